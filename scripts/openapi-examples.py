"""Captures the 2xx answers of a live server as the OpenAPI document's examples.

Usage (scripts/openapi-examples.sh starts the server and runs this):
  python3 scripts/openapi-examples.py BASE_URL ACCESS SECRET ACCESS2 SECRET2 JWT OUT.json

Writes {operationId: example} for every operation whose success answer has a body
(but the document's own route, whose answer is the document);
the document shows each under its 2xx response (crates/api-actix/src/openapi/finish.rs).
"""

import json
import sys
import urllib.request

base, access, secret, access2, secret2, jwt, out = sys.argv[1:8]


def call(method, path, body=None, tokens=(access, secret), headers=None):
    request = urllib.request.Request(base + path, method=method)
    if tokens:
        request.add_header("X-Api-Access-Token", tokens[0])
        request.add_header("X-Api-Secret-Token", tokens[1])
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, data) as response:
        text = response.read().decode()
        if response.headers.get_content_type() == "application/json":
            return json.loads(text)
        return text


examples = {}
domain = "example.com"
examples["generateDomain"] = call(
    "POST", "/api/v1/emails/domains/generate",
    {"email": "noreply@example.com", "replyTo": "support@example.com", "inbound": False},
)
call("POST", "/api/v1/emails/domains/generate", {"email": "billing@example.com"})
examples["createDomain"] = call("POST", "/api/v1/emails/domains", {"name": "example.org"})
examples["listDomains"] = call("GET", "/api/v1/emails/domains")
examples["getDomain"] = call("GET", f"/api/v1/emails/domains/{domain}")
examples["getDomainZone"] = call("GET", f"/api/v1/emails/domains/{domain}/zone")
# A real apply URL needs a DNS provider that serves Domain Connect, which the capture
# cannot run: this answer is one the end-to-end test's stand-in provider led to
# (tests/e2e/domain_connect.rs), kept as it came.
examples["getDomainConnect"] = {"provider": "Stand-in DNS", "applyUrl": "https://connect.dnsprovider.example:37243/v2/domainTemplates/providers/mailservice.example/services/sending-domain/apply?domain=shop-dc.example&host=mail&dkimkey=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApMCD7WRYLQsFzBBgz1BW0PVOSVBFj0A8HmUuQ0ZxZy1ufOa5Ol%2By%2BxrPNRDAtb9R5l4D0K%2F3ACUOXfATolhMYWhqzv8%2BhhiDx13vvCtvmXET%2BAUU3JJfNPPdXzPRIgsikHveKuEvxgzVqscPr2U3Ap2Sz%2BNir1rpDBzPLsdf4Zw1GfZzBNOTAPAKMg%2B%2FfZLSmDvZbiSkwLjm72r835RgiyrpHiRRZppklITTKvoNqjOlK49loICkQZC1gL8vzmn7WUIp%2BIVANwXmB0r%2FCWWkbhKFvjfgM0YNcEnvSknHBog3b0ARka5tX7qSuYHI2Kpmf7lTWP4drqST3yGYeTGR4QIDAQAB&dkimselector=jjpoqmdtxezk&mxhost=inbound.sendtrim.com&spfrules=ip4%3A51.79.43.241&groupId=sending&redirect_uri=http%3A%2F%2F127.0.0.1%3A42357%2Fsetup%2Fmail.shop-dc.example%3Fdomainconnect%3Dapplied&key=_dck1&sig=itkm%2FwjWDazr5wDwPYOvPIXJgYvaOV47aOVQDRHf4dmwUPR2TJMVuy3F3bgC9CfWozOGP%2FL5nHqpzEhR%2BJhGsmKAiXHsp2xaGtCFGvst4cmdQ2BLffXpBp6Y5GSYEVZrBbTLzhrHHssg51L55wkm9Ehptu8DXIO%2F2ElUmBFCntaRCsQg92%2F729HmihSRnzV5UVzs0K5WXvndKcZLa%2BXRphrHCX3Au%2FY%2FucIT2bo%2F8W8pS0Rz9vstpqTioLXLCRdDAZszgEcMcBoLruK0leGUxs%2FiBpTzU8GgU7hunJ4BauGZ50eiz78OTcBbd1YGtgvGQlFFCU6SGP%2Bm5Ui5QIaYpw%3D%3D"}
examples["updateDomain"] = call("PATCH", f"/api/v1/emails/domains/{domain}", {"inbound": False})
examples["verifyDomain"] = call("POST", f"/api/v1/emails/domains/{domain}/verify")
examples["rotateDkimKey"] = call("POST", f"/api/v1/emails/domains/{domain}/dkim/rotate")
examples["listSenders"] = call("GET", "/api/v1/emails/senders")
examples["activateSender"] = call("POST", "/api/v1/emails/senders/noreply@example.com/activate")
examples["listEvents"] = call("GET", "/api/v1/events?limit=3")
examples["createWebhook"] = call(
    "POST", "/api/v1/webhooks",
    {"url": "https://hooks.example.com/domain-api", "events": ["domain.verified", "domain.failing"]},
)
examples["listWebhooks"] = call("GET", "/api/v1/webhooks")
hook = examples["createWebhook"]["id"]
# No secret in the repository, even a throwaway server's: the same shape, all zero
# bytes (24, base64).
examples["createWebhook"]["secret"] = "whsec_" + "A" * 32
examples["listWebhookDeliveries"] = call("GET", f"/api/v1/webhooks/{hook}/deliveries")
examples["validateDomain"] = call(
    "GET", f"/api/v1/domains/validate?domain={domain}", tokens=None,
    headers={"Authorization": f"Bearer {jwt}"},
)
examples["openClaim"] = call("POST", f"/api/v1/emails/domains/{domain}/claim", tokens=(access2, secret2))
# A claim's proof needs its TXT record live, which the capture's DNS cannot serve; the
# 200 of verifyClaim is the domain's detail, the same answer as getDomain's.
examples["verifyClaim"] = examples["getDomain"]
examples["getMetrics"] = call("GET", "/metrics", tokens=None)
examples["checkHealth"] = call("GET", "/healthz", tokens=None)
examples["checkReadiness"] = call("GET", "/readyz", tokens=None)

with open(out, "w", encoding="utf-8") as f:
    json.dump(examples, f, indent=2, ensure_ascii=False)
    f.write("\n")
print(f"{len(examples)} examples written to {out}")
