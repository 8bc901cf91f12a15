"""generate → detail → verify → rotate → events → webhooks, against a live server,
through the client openapi-python-client generated from docs/openapi.json.

Usage: python flow.py BASE_URL ACCESS_TOKEN SECRET_TOKEN   (the generated package
`domain_api_client` on PYTHONPATH). Exits non-zero at the first unexpected answer.
"""

import sys
import uuid

from domain_api_client import AuthenticatedClient
from domain_api_client.api.domains import generate_domain, get_domain, get_domain_zone, list_domains
from domain_api_client.api.lifecycle import list_events, list_senders, rotate_dkim_key, verify_domain
from domain_api_client.api.webhooks import create_webhook, list_webhook_deliveries, list_webhooks
from domain_api_client.models import (
    DomainDetail,
    DomainStatus,
    EventTypeName,
    GenerateRequest,
    KeyState,
    WebhookCreate,
)


def expect(response, status):
    if response.status_code != status:
        sys.exit(f"expected {status}, got {response.status_code}: {response.content!r}")
    return response.parsed


def main():
    base_url, access, secret = sys.argv[1:4]
    # The two apiKey schemes: the access token as the client's "token" header, the
    # secret as a header on every request.
    client = AuthenticatedClient(
        base_url=base_url,
        token=access,
        prefix="",
        auth_header_name="X-Api-Access-Token",
        headers={"X-Api-Secret-Token": secret},
        raise_on_unexpected_status=True,
    )
    domain = f"flow-{uuid.uuid4().hex[:8]}.bücher.example"
    email = f"first.middle.last@{domain}"

    records = expect(
        generate_domain.sync_detailed(
            client=client,
            body=GenerateRequest(email=email),
            idempotency_key=str(uuid.uuid4()),
        ),
        201,
    )
    names = list(records.additional_properties)
    assert names[0] == "SPF" and names[2] == "_dmarc", names

    detail = expect(get_domain.sync_detailed(domain, client=client), 200)
    assert isinstance(detail, DomainDetail), detail
    assert detail.status == DomainStatus.PENDING, detail.status
    assert detail.dkim[0].state == KeyState.ACTIVE, detail.dkim[0].state
    assert detail.created_at.tzinfo is not None  # a date-time, parsed
    ascii_name = detail.domain
    assert ascii_name.startswith("flow-") and "xn--" in ascii_name, ascii_name

    zone = expect(get_domain_zone.sync_detailed(domain, client=client), 200)
    assert "TXT" in zone, zone

    expect(verify_domain.sync_detailed(domain, client=client), 200)

    rotated = expect(rotate_dkim_key.sync_detailed(domain, client=client), 202)
    assert rotated.dkim[0].state == KeyState.PENDING, rotated.dkim[0].state
    again = rotate_dkim_key.sync_detailed(domain, client=client)
    assert again.status_code == 409 and again.parsed == "A DKIM rotation is already in progress", again

    events = expect(list_events.sync_detailed(client=client), 200)
    types = [e.type_ for e in events.events]
    assert "domain.created" in [str(t) for t in types], types

    domains = expect(list_domains.sync_detailed(client=client, limit=10), 200)
    assert ascii_name in [d.domain for d in domains.domains]
    senders = expect(list_senders.sync_detailed(client=client), 200)
    assert email in [s.email for s in senders.senders] or any(
        s.domain == ascii_name for s in senders.senders
    ), senders

    created = expect(
        create_webhook.sync_detailed(
            client=client,
            body=WebhookCreate(
                url="https://hooks.example.com/domain-api",
                events=[EventTypeName.DOMAIN_VERIFIED],
            ),
        ),
        201,
    )
    assert created.secret, created
    hooks = expect(list_webhooks.sync_detailed(client=client), 200)
    assert created.id in [h.id for h in hooks.webhooks]
    expect(list_webhook_deliveries.sync_detailed(created.id, client=client), 200)
    print(f"python client flow passed for {domain}")


if __name__ == "__main__":
    main()
