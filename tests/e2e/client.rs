//! The generated Rust client (crates/client, progenitor) against the real binary:
//! typed requests and answers, and errors with the service's own status and sentence.

use domain_api_client::types::{
    DkimKey, DomainCreate, DomainStatus, GenerateRequest, GetDomainDomain, KeyState,
    RotateDkimKeyDomain,
};
use domain_api_client::{Client, Error, text, with_api_tokens};
use store_diesel::test_support::backends;

use crate::helpers::spawn_app;

fn active(keys: &[DkimKey]) -> Vec<&DkimKey> {
    keys.iter()
        .filter(|k| k.state == KeyState::Active)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generated_rust_client_provisions_reads_and_rotates_a_domain() {
    for kind in backends() {
        let app = spawn_app(kind).await;
        let org = app.create_org("Typed");
        let client = Client::new_with_client(
            &app.url(""),
            with_api_tokens(&org.access, &org.secret).unwrap(),
        );

        let request = GenerateRequest {
            email: "first.middle.last@bücher.example".parse().unwrap(),
            inbound: Some(false),
            reply_to: None,
        };
        let records = client.generate_domain(None, &request).await.unwrap();
        assert_eq!(records.status().as_u16(), 201, "{kind:?}");
        assert_eq!(records.len(), 3, "{kind:?}");

        let name: GetDomainDomain = "bücher.example".parse().unwrap();
        let detail = client.get_domain(&name).await.unwrap().into_inner();
        assert_eq!(detail.domain, "xn--bcher-kva.example");
        assert_eq!(detail.unicode, "bücher.example");
        assert_eq!(detail.status, DomainStatus::Pending);
        assert_eq!(active(&detail.dkim).len(), 1, "{kind:?}");
        assert!(detail.created_at <= chrono::Utc::now());

        let rotate: RotateDkimKeyDomain = "bücher.example".parse().unwrap();
        let rotated = client.rotate_dkim_key(&rotate, None).await.unwrap();
        assert_eq!(rotated.status().as_u16(), 202);
        assert_eq!(rotated.dkim[0].state, KeyState::Pending);

        match client.rotate_dkim_key(&rotate, None).await {
            Err(Error::ErrorResponse(answer)) => {
                assert_eq!(answer.status().as_u16(), 409);
                assert_eq!(
                    text(answer.into_inner()).await.unwrap(),
                    "A DKIM rotation is already in progress"
                );
            }
            other => panic!("{kind:?}: expected the 409, got {other:?}"),
        }
        let missing: GetDomainDomain = "nowhere.example".parse().unwrap();
        match client.get_domain(&missing).await {
            Err(Error::ErrorResponse(answer)) => {
                assert_eq!(answer.status().as_u16(), 404);
                assert_eq!(text(answer.into_inner()).await.unwrap(), "Domain not found");
            }
            other => panic!("{kind:?}: expected the 404, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generated_rust_client_creates_a_domain_on_its_own() {
    for kind in backends() {
        let app = spawn_app(kind).await;
        let org = app.create_org("Typed creator");
        let client = Client::new_with_client(
            &app.url(""),
            with_api_tokens(&org.access, &org.secret).unwrap(),
        );
        let request = DomainCreate {
            name: "typed.example".parse().unwrap(),
            inbound: None,
        };

        let created = client.create_domain(None, &request).await.unwrap();
        assert_eq!(created.status().as_u16(), 201, "{kind:?}");
        assert_eq!(created.domain, "typed.example");
        assert!(created.senders.is_empty());
        let again = client.create_domain(None, &request).await.unwrap();
        assert_eq!(again.status().as_u16(), 200, "{kind:?}");
        assert_eq!(again.dkim[0].selector, created.dkim[0].selector);
    }
}
