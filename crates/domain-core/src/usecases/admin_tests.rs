use std::sync::Arc;

use mockall::predicate::eq;
use zeroize::Zeroizing;

use super::*;
use crate::SealedKey;
use crate::ports::admin::MockAdministration;
use crate::ports::idempotency::{IdempotencyKey, MockAnswerSealer};
use crate::ports::keys::{MockKeyVault, PrivateKey};
use crate::ports::webhooks::MockWebhookSecrets;
use crate::usecases::fixtures::org;
use crate::usecases::idempotency::SEALED_MAGIC;
use crate::webhooks::{WebhookId, WebhookSecret};

fn token() -> IssuedToken {
    IssuedToken::encode(&[1; 32], &[2; 16], &[3; 32])
}

#[tokio::test]
async fn refuses_a_blank_organization_name_without_touching_the_store() {
    let mut admin = MockAdministration::new();
    admin.expect_create_organization().never();
    let use_case = ManageOrganizations::new(Arc::new(admin));

    let error = use_case.create_organization("  ").await.unwrap_err();

    assert!(matches!(error, AdminError::InvalidName(_)), "{error:?}");
}

#[tokio::test]
async fn creates_an_organization_with_its_first_token_pair() {
    let mut admin = MockAdministration::new();
    admin
        .expect_create_organization()
        .withf(|name| name.as_str() == "Acme")
        .times(1)
        .returning(|_| Ok((org(), token())));
    let use_case = ManageOrganizations::new(Arc::new(admin));

    let (id, issued) = use_case.create_organization("Acme").await.unwrap();

    assert_eq!((id, issued), (org(), token()));
}

#[tokio::test]
async fn answers_unknown_organization_when_issuing_a_token_for_none() {
    let mut admin = MockAdministration::new();
    admin
        .expect_create_token()
        .with(eq(org()))
        .returning(|_| Ok(None));

    let error = ManageOrganizations::new(Arc::new(admin))
        .create_token(&org())
        .await
        .unwrap_err();

    assert!(
        matches!(error, AdminError::UnknownOrganization),
        "{error:?}"
    );
}

#[tokio::test]
async fn answers_unknown_token_when_nothing_was_revoked() {
    let mut admin = MockAdministration::new();
    admin
        .expect_revoke_token()
        .with(eq("dak_x"))
        .returning(|_| Ok(false));

    let error = ManageOrganizations::new(Arc::new(admin))
        .revoke_token("dak_x\n")
        .await
        .unwrap_err();

    assert!(matches!(error, AdminError::UnknownToken), "{error:?}");
}

#[tokio::test]
async fn exports_the_opened_key_as_pem() {
    let mut admin = MockAdministration::new();
    admin
        .expect_sealed_key()
        .returning(|_| Ok(Some(SealedKey(vec![9]))));
    let mut vault = MockKeyVault::new();
    vault
        .expect_open()
        .withf(|domain, sealed| domain.as_ascii() == "example.com" && sealed.0 == [9])
        .returning(|_, _| Ok(PrivateKey(Zeroizing::new(vec![1, 2]))));
    vault
        .expect_to_pem()
        .returning(|_| Ok(Zeroizing::new("-----BEGIN PRIVATE KEY-----".into())));

    let pem = ManageKeys::new(Arc::new(admin), Arc::new(vault), no_secrets(), no_answers())
        .export("Example.COM")
        .await
        .unwrap();

    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[tokio::test]
async fn reports_a_key_that_does_not_open_under_this_master_key() {
    let mut admin = MockAdministration::new();
    admin
        .expect_sealed_key()
        .returning(|_| Ok(Some(SealedKey(vec![9]))));
    let mut vault = MockKeyVault::new();
    vault
        .expect_open()
        .returning(|_, _| Err(KeyError("wrong key".into())));
    vault.expect_to_pem().never();

    let error = ManageKeys::new(Arc::new(admin), Arc::new(vault), no_secrets(), no_answers())
        .export("example.com")
        .await
        .unwrap_err();

    assert!(matches!(error, AdminError::Key { .. }), "{error:?}");
}

#[tokio::test]
async fn answers_unknown_domain_for_a_domain_with_no_key() {
    let mut admin = MockAdministration::new();
    admin.expect_sealed_key().returning(|_| Ok(None));

    let error = ManageKeys::new(
        Arc::new(admin),
        Arc::new(MockKeyVault::new()),
        no_secrets(),
        no_answers(),
    )
    .export("example.com")
    .await
    .unwrap_err();

    assert!(matches!(error, AdminError::UnknownDomain(_)), "{error:?}");
}

#[tokio::test]
async fn reseals_with_the_new_vault_and_proves_the_new_blob_opens() {
    let mut admin = MockAdministration::new();
    admin
        .expect_reseal_keys()
        .times(1)
        .returning(|reseal, reseal_secret, reseal_answer| {
            let domain = DomainName::parse("example.com").unwrap();
            let resealed =
                reseal(&domain, &SealedKey(vec![1])).map_err(|source| ResealError::Key {
                    domain: domain.to_string(),
                    source,
                })?;
            assert_eq!(resealed, SealedKey(vec![2]));
            let endpoint = WebhookId::from_random([3; 16]);
            let secret =
                reseal_secret(&endpoint, &[4]).map_err(|source| ResealError::WebhookSecret {
                    endpoint: endpoint.to_string(),
                    source,
                })?;
            assert_eq!(secret, vec![5]);
            // A sealed answer, and one kept before answers were sealed.
            let key = IdempotencyKey::parse(b"order-1").unwrap();
            let fail = |source| ResealError::Answer {
                organization: org().to_string(),
                source,
            };
            let sealed =
                reseal_answer(&org(), &key, &[SEALED_MAGIC, &[6]].concat()).map_err(fail)?;
            assert_eq!(sealed, [SEALED_MAGIC, &[8]].concat());
            let plain = reseal_answer(&org(), &key, b"{}").map_err(fail)?;
            assert_eq!(plain, [SEALED_MAGIC, &[10]].concat());
            Ok(ResealCount {
                keys: 1,
                webhook_secrets: 1,
                answers: 2,
            })
        });
    let mut old = MockKeyVault::new();
    old.expect_open()
        .withf(|_, sealed| sealed.0 == [1])
        .times(1)
        .returning(|_, _| Ok(PrivateKey(Zeroizing::new(vec![7]))));
    let mut new = MockKeyVault::new();
    new.expect_seal()
        .withf(|_, key| *key.0 == [7])
        .times(1)
        .returning(|_, _| Ok(SealedKey(vec![2])));
    new.expect_open()
        .withf(|_, sealed| sealed.0 == [2])
        .times(1)
        .returning(|_, _| Ok(PrivateKey(Zeroizing::new(vec![7]))));

    let mut old_secrets = MockWebhookSecrets::new();
    old_secrets
        .expect_open()
        .withf(|_, sealed| sealed == [4])
        .times(1)
        .returning(|_, _| Ok(WebhookSecret(Zeroizing::new(vec![9]))));
    let mut new_secrets = MockWebhookSecrets::new();
    new_secrets
        .expect_seal()
        .withf(|_, secret| *secret.0 == [9])
        .times(1)
        .returning(|_, _| Ok(vec![5]));
    new_secrets
        .expect_open()
        .withf(|_, sealed| sealed == [5])
        .times(1)
        .returning(|_, _| Ok(WebhookSecret(Zeroizing::new(vec![9]))));

    let mut old_answers = MockAnswerSealer::new();
    old_answers
        .expect_open()
        .withf(|_, _, sealed| sealed == [6])
        .times(1)
        .returning(|_, _, _| Ok(b"{\"secret\":1}".to_vec()));
    let mut new_answers = MockAnswerSealer::new();
    new_answers
        .expect_seal()
        .withf(|_, _, body| body == b"{\"secret\":1}")
        .times(1)
        .returning(|_, _, _| Ok(vec![8]));
    new_answers
        .expect_seal()
        .withf(|_, _, body| body == b"{}")
        .times(1)
        .returning(|_, _, _| Ok(vec![10]));
    new_answers
        .expect_open()
        .times(2)
        .returning(|_, _, _| Ok(Vec::new()));

    let count = ManageKeys::new(
        Arc::new(admin),
        Arc::new(old),
        Arc::new(old_secrets),
        Arc::new(old_answers),
    )
    .reseal_all(Arc::new(new), Arc::new(new_secrets), Arc::new(new_answers))
    .await
    .unwrap();

    assert_eq!(
        count,
        ResealCount {
            keys: 1,
            webhook_secrets: 1,
            answers: 2,
        }
    );
}

fn no_secrets() -> Arc<MockWebhookSecrets> {
    Arc::new(MockWebhookSecrets::new())
}

fn no_answers() -> Arc<MockAnswerSealer> {
    Arc::new(MockAnswerSealer::new())
}

#[tokio::test]
async fn a_master_key_check_counts_the_stored_keys_that_open() {
    let domain = |name: &str| DomainName::parse(name).unwrap();
    let mut admin = MockAdministration::new();
    admin
        .expect_sample_sealed_keys()
        .with(eq(3))
        .times(1)
        .returning(move |_| {
            Ok(vec![
                (domain("a.example"), SealedKey(vec![1])),
                (domain("b.example"), SealedKey(vec![2])),
            ])
        });
    let mut vault = MockKeyVault::new();
    vault.expect_open().returning(|_, sealed| {
        if sealed.0 == [1] {
            Ok(PrivateKey(Zeroizing::new(vec![7])))
        } else {
            Err(KeyError("wrong key".into()))
        }
    });

    let check = ManageKeys::new(Arc::new(admin), Arc::new(vault), no_secrets(), no_answers())
        .check_master_key(3)
        .await
        .unwrap();

    assert_eq!(
        check,
        MasterKeyCheck {
            tried: 2,
            opened: 1
        }
    );
    assert!(!check.opens_none());
    assert!(
        MasterKeyCheck {
            tried: 2,
            opened: 0
        }
        .opens_none()
    );
    assert!(
        !MasterKeyCheck {
            tried: 0,
            opened: 0
        }
        .opens_none(),
        "no keys: nothing to refuse"
    );
}

#[tokio::test]
async fn listing_the_tokens_of_an_unknown_organization_says_so() {
    let mut admin = MockAdministration::new();
    admin
        .expect_list_tokens()
        .with(eq(org()))
        .returning(|_| Ok(None));

    let error = ManageOrganizations::new(Arc::new(admin))
        .list_tokens(&org())
        .await
        .unwrap_err();

    assert!(
        matches!(error, AdminError::UnknownOrganization),
        "{error:?}"
    );
}
