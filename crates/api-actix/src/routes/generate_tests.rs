//! Route tests of generate's ownership answers over domain-core's mocks: the tarpit
//! before a 429 and its `Retry-After`.

use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use domain_core::ports::store::RegisterError;

use super::generate::TARPIT;
use super::test_app::*;

fn generate(email: &str) -> TestRequest {
    as_org_a(
        TestRequest::post()
            .uri("/api/v1/emails/domains/generate")
            .insert_header(("Content-Type", "application/json"))
            .set_payload(format!(r#"{{"email":"{email}"}}"#)),
    )
}

#[tokio::test]
async fn a_rate_limited_new_domain_is_held_a_second_and_told_the_rest_of_the_wait() {
    let mut mocks = Mocks::new();
    mocks.store.expect_find_domain().returning(|_| Ok(None));
    mocks
        .store
        .expect_admit_creation()
        .times(1)
        .returning(|_, _| {
            Err(RegisterError::RateLimited {
                retry_after: Duration::from_secs(10),
            })
        });
    mocks.keys.expect_generate().never();
    let started = Instant::now();
    let answer = call(mocks.state(), generate("x@new.example")).await;
    assert!(
        started.elapsed() >= TARPIT,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(answer.text(), (429, "Too many new domains; retry later"));
    // Ten seconds to wait, one of them spent in the tarpit.
    assert_eq!(answer.retry_after.as_deref(), Some("9"));
}

#[tokio::test]
async fn other_refusals_are_answered_at_once() {
    let mut mocks = Mocks::new();
    mocks.store.expect_find_domain().returning(|_| Ok(None));
    mocks
        .store
        .expect_admit_creation()
        .returning(|_, _| Err(RegisterError::DomainLimit));
    let started = Instant::now();
    let answer = call(mocks.state(), generate("x@new.example")).await;
    assert!(started.elapsed() < TARPIT);
    assert_eq!(answer.text(), (403, "Domain limit reached"));
    assert_eq!(answer.retry_after, None);
}
