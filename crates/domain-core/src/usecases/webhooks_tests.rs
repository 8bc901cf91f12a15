use std::sync::Mutex;

use chrono::{TimeZone, Utc};
use zeroize::Zeroizing;

use super::*;
use crate::lifecycle::Event;
use crate::ports::clock::MockClock;
use crate::ports::dns::MockDns;
use crate::ports::keys::KeyError;
use crate::ports::webhooks::{
    IssuedSecret, MockDeliveryQueue, MockWebhookSecrets, MockWebhookSender, MockWebhookStore,
};
use crate::usecases::fixtures::org;
use crate::webhooks::WebhookSecret;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
}

fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    Arc::new(clock)
}

fn secrets() -> MockWebhookSecrets {
    let mut secrets = MockWebhookSecrets::new();
    secrets.expect_issue().returning(|| {
        Ok(IssuedSecret {
            id: WebhookId::from_random([1; 16]),
            secret: WebhookSecret(Zeroizing::new(vec![7; 24])),
            sealed: b"sealed".to_vec(),
        })
    });
    secrets
        .expect_open()
        .returning(|_, _| Ok(WebhookSecret(Zeroizing::new(vec![7; 24]))));
    // A stand-in MAC: the content itself, so the test sees what was signed.
    secrets
        .expect_sign()
        .returning(|_, content| content.to_vec());
    secrets
}

fn dns_answering(addresses: &'static [&'static str]) -> MockDns {
    let mut dns = MockDns::new();
    dns.expect_addresses()
        .returning(|_| Ok(addresses.iter().map(|a| a.parse().unwrap()).collect()));
    dns
}

fn manage(store: MockWebhookStore, dns: MockDns) -> ManageWebhooks {
    ManageWebhooks::new(
        Arc::new(store),
        Arc::new(secrets()),
        Arc::new(dns),
        clock(),
        Arc::new(AddressPolicy::default()),
        DEFAULT_MAX_ENDPOINTS,
    )
}

#[tokio::test]
async fn create_stores_the_endpoint_with_its_sealed_secret_and_shows_the_secret_once() {
    let mut store = MockWebhookStore::new();
    store
        .expect_create_endpoint()
        .withf(|new, limit| {
            new.secret_sealed == b"sealed"
                && new.endpoint.url == "https://hooks.example.com/in"
                && new.endpoint.events == Some(vec![EventType::DomainVerified])
                && new.organization == org()
                && *limit == DEFAULT_MAX_ENDPOINTS
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let created = manage(store, dns_answering(&["93.184.216.34"]))
        .create(
            &org(),
            "https://hooks.example.com/in",
            Some(&["domain.verified".into(), "domain.verified".into()]),
        )
        .await
        .unwrap();
    assert!(created.secret.starts_with("whsec_"));
    assert_eq!(created.endpoint.created_at, now());
}

#[tokio::test]
async fn create_refuses_a_name_that_resolves_to_a_forbidden_address() {
    for answer in [
        &["127.0.0.1"][..],
        &["93.184.216.34", "10.0.0.1"],
        &["169.254.169.254"],
    ] {
        let answer: &'static [&'static str] = Box::leak(answer.to_vec().into_boxed_slice());
        let mut store = MockWebhookStore::new();
        store.expect_create_endpoint().never();
        let error = manage(store, dns_answering(answer))
            .create(&org(), "https://hooks.example.com/", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, WebhookError::InvalidUrl(url) if url == "https://hooks.example.com/"),
            "{answer:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn create_says_unavailable_when_the_lookup_fails_and_invalid_when_the_name_is_missing() {
    let mut dns = MockDns::new();
    dns.expect_addresses().returning(|_| Err(DnsError::Timeout));
    let error = manage(MockWebhookStore::new(), dns)
        .create(&org(), "https://hooks.example.com/", None)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        WebhookError::Infra(InfraError::Unavailable(_))
    ));

    let mut dns = MockDns::new();
    dns.expect_addresses()
        .returning(|_| Err(DnsError::NxDomain));
    let error = manage(MockWebhookStore::new(), dns)
        .create(&org(), "https://hooks.example.com/", None)
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::InvalidUrl(_)));
}

#[tokio::test]
async fn create_refuses_unknown_or_no_event_types_and_the_limit() {
    let error = manage(MockWebhookStore::new(), dns_answering(&["93.184.216.34"]))
        .create(
            &org(),
            "https://hooks.example.com/",
            Some(&["domain.nope".into()]),
        )
        .await
        .unwrap_err();
    assert!(matches!(&error, WebhookError::UnknownEvent(kind) if kind == "domain.nope"));
    let error = manage(MockWebhookStore::new(), dns_answering(&["93.184.216.34"]))
        .create(&org(), "https://hooks.example.com/", Some(&[]))
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::NoEvents));

    let mut store = MockWebhookStore::new();
    store
        .expect_create_endpoint()
        .returning(|_, _| Err(CreateEndpointError::LimitReached));
    let error = manage(store, dns_answering(&["93.184.216.34"]))
        .create(&org(), "https://hooks.example.com/", None)
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::LimitReached));
}

#[tokio::test]
async fn a_malformed_id_is_not_found_without_asking_the_store() {
    let manage = manage(MockWebhookStore::new(), MockDns::new());
    assert!(matches!(
        manage.delete(&org(), "../etc").await,
        Err(WebhookError::NotFound)
    ));
    let page = Page {
        after: None,
        limit: 10,
    };
    assert!(matches!(
        manage.deliveries(&org(), "wh_x", &page).await,
        Err(WebhookError::NotFound)
    ));
}

fn due(attempts: u32) -> DueDelivery {
    DueDelivery {
        id: 9,
        organization: org(),
        endpoint: WebhookId::from_random([1; 16]),
        url: "https://hooks.example.com/in".into(),
        secret_sealed: b"sealed".to_vec(),
        event: Event {
            id: 77,
            kind: EventType::DomainVerified,
            domain: Some("example.com".into()),
            selector: None,
            email: None,
            created_at: now(),
        },
        attempts,
        failures: 0,
    }
}

type Recorded = Arc<Mutex<Vec<(Attempt, NextStep)>>>;

fn deliverer(dns: MockDns, sender: MockWebhookSender, recorded: &Recorded) -> DeliverWebhooks {
    let mut queue = MockDeliveryQueue::new();
    let sink = Arc::clone(recorded);
    queue.expect_record_attempts().returning(move |batch| {
        for recorded in batch {
            sink.lock()
                .unwrap()
                .push((recorded.attempt.clone(), recorded.next));
        }
        Ok(())
    });
    DeliverWebhooks::new(
        Arc::new(queue),
        Arc::new(secrets()),
        Arc::new(dns),
        Arc::new(sender),
        clock(),
        DeliverySettings {
            policy: Arc::new(AddressPolicy::default()),
            retry: Arc::new(RetrySchedule::standard()),
            timeout: Duration::from_secs(5),
        },
    )
}

#[tokio::test]
async fn a_delivery_is_signed_per_standard_webhooks_and_sent_to_the_checked_address() {
    let sent = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&sent);
    let mut sender = MockWebhookSender::new();
    sender.expect_send().returning(move |request| {
        *seen.lock().unwrap() = Some(request.clone());
        SendOutcome::Status(204)
    });
    let recorded = Recorded::default();
    let outcome = deliverer(dns_answering(&["93.184.216.34"]), sender, &recorded)
        .deliver(&due(0))
        .await;
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    let request = sent.lock().unwrap().clone().unwrap();
    assert_eq!(request.address, "93.184.216.34:443".parse().unwrap());
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(header("webhook-id"), "77");
    assert_eq!(header("webhook-timestamp"), now().timestamp().to_string());
    // The stand-in MAC is the signed content: id.timestamp.body.
    let content = format!("77.{}.{}", now().timestamp(), request.body);
    assert_eq!(
        header("webhook-signature"),
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(content)
        )
    );
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded[0].0.status_code, Some(204));
    assert_eq!(recorded[0].1, NextStep::Delivered);
}

#[tokio::test]
async fn a_name_that_now_resolves_to_a_forbidden_address_is_refused_without_a_request() {
    let mut sender = MockWebhookSender::new();
    sender.expect_send().never();
    let recorded = Recorded::default();
    let outcome = deliverer(dns_answering(&["127.0.0.1"]), sender, &recorded)
        .deliver(&due(0))
        .await;
    assert_eq!(outcome, DeliveryOutcome::Retry);
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded[0].0.error.as_deref(), Some("address not allowed"));
    assert_eq!(recorded[0].0.status_code, None);
    assert_eq!(
        recorded[0].1,
        NextStep::RetryAt(now() + chrono::Duration::seconds(5))
    );
}

#[tokio::test]
async fn failures_follow_the_retry_schedule_then_fail_for_good() {
    for (attempts_before, expected) in [
        (0, NextStep::RetryAt(now() + chrono::Duration::seconds(5))),
        (1, NextStep::RetryAt(now() + chrono::Duration::minutes(5))),
        (6, NextStep::RetryAt(now() + chrono::Duration::hours(10))),
        (7, NextStep::Failed),
    ] {
        let mut sender = MockWebhookSender::new();
        sender.expect_send().returning(|_| SendOutcome::Status(500));
        let recorded = Recorded::default();
        let outcome = deliverer(dns_answering(&["93.184.216.34"]), sender, &recorded)
            .deliver(&due(attempts_before))
            .await;
        let expected_outcome = if expected == NextStep::Failed {
            DeliveryOutcome::Failed
        } else {
            DeliveryOutcome::Retry
        };
        assert_eq!(outcome, expected_outcome);
        assert_eq!(
            recorded.lock().unwrap()[0].1,
            expected,
            "after {attempts_before}"
        );
    }
}

#[tokio::test]
async fn a_redirect_or_a_timeout_is_not_a_delivery() {
    for answer in [SendOutcome::Status(302), SendOutcome::Failed("timeout")] {
        let mut sender = MockWebhookSender::new();
        let reply = answer.clone();
        sender.expect_send().returning(move |_| reply.clone());
        let recorded = Recorded::default();
        let outcome = deliverer(dns_answering(&["93.184.216.34"]), sender, &recorded)
            .deliver(&due(0))
            .await;
        assert_eq!(outcome, DeliveryOutcome::Retry, "{answer:?}");
    }
}

#[tokio::test]
async fn a_secret_that_does_not_open_is_a_failed_attempt_not_a_request() {
    let mut secrets = MockWebhookSecrets::new();
    secrets
        .expect_open()
        .returning(|_, _| Err(KeyError("tampered".into())));
    let mut sender = MockWebhookSender::new();
    sender.expect_send().never();
    let recorded = Recorded::default();
    let mut queue = MockDeliveryQueue::new();
    let sink = Arc::clone(&recorded);
    queue.expect_record_attempts().returning(move |batch| {
        for recorded in batch {
            sink.lock()
                .unwrap()
                .push((recorded.attempt.clone(), recorded.next));
        }
        Ok(())
    });
    let deliver = DeliverWebhooks::new(
        Arc::new(queue),
        Arc::new(secrets),
        Arc::new(dns_answering(&["93.184.216.34"])),
        Arc::new(sender),
        clock(),
        DeliverySettings {
            policy: Arc::new(AddressPolicy::default()),
            retry: Arc::new(RetrySchedule::standard()),
            timeout: Duration::from_secs(5),
        },
    );
    assert_eq!(deliver.deliver(&due(0)).await, DeliveryOutcome::Retry);
    assert_eq!(
        recorded.lock().unwrap()[0].0.error.as_deref(),
        Some("secret unavailable")
    );
}

#[tokio::test]
async fn pruning_asks_for_deliveries_finished_before_the_retention() {
    let mut queue = MockDeliveryQueue::new();
    queue
        .expect_prune_deliveries()
        .withf(|before, batch| *before == now() - chrono::Duration::days(30) && *batch == 1000)
        .times(1)
        .returning(|_, _| Ok(3));
    let deliver = DeliverWebhooks::new(
        Arc::new(queue),
        Arc::new(secrets()),
        Arc::new(MockDns::new()),
        Arc::new(MockWebhookSender::new()),
        clock(),
        DeliverySettings {
            policy: Arc::new(AddressPolicy::default()),
            retry: Arc::new(RetrySchedule::standard()),
            timeout: Duration::from_secs(5),
        },
    );
    let pruned = deliver
        .prune(Duration::from_secs(30 * 24 * 3600), 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 3);
}
