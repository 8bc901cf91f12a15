//! Store tests against real databases: SQLite always, PostgreSQL when configured.
//! Each test gets its own fresh database per backend.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{all, key, org, registration};
use domain_core::OrganizationName;
use domain_core::lifecycle::Page;
use domain_core::ports::admin::{Administration, ResealError};
use domain_core::ports::credentials::Credentials;
use domain_core::ports::store::{DomainStore, RegisterError};
use domain_core::{ApiCredentials, DomainName, EmailAddress, OrganizationId, SealedKey};
use store_diesel::test_support::{TestDatabase, backends};
use store_diesel::{BackendKind, Store};

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_once_and_again_without_error() {
    on_every_backend!(|store, _kind| {
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issued_token_pair_authenticates_its_organization_only_while_live() {
    on_every_backend!(|store, kind| {
        let (org, token) = store
            .create_organization(&OrganizationName::parse("Acme").unwrap())
            .await
            .unwrap();
        let good =
            ApiCredentials::from_headers(Some(&token.access_token), Some(&token.secret_token))
                .unwrap();
        let wrong_secret =
            ApiCredentials::from_headers(Some(&token.access_token), Some("das_nope")).unwrap();

        assert_eq!(
            store.organization_for(&good).await.unwrap(),
            Some(org.clone()),
            "{kind:?}"
        );
        assert_eq!(
            store.organization_for(&wrong_secret).await.unwrap(),
            None,
            "{kind:?}"
        );
        // dak_ + base64url(32 random bytes + 16-byte tag); das_ + base64url(32 bytes).
        assert!(token.access_token.starts_with("dak_") && token.access_token.len() == 68);
        assert!(token.secret_token.starts_with("das_") && token.secret_token.len() == 47);

        assert!(store.revoke_token(&token.access_token).await.unwrap());
        assert!(
            !store.revoke_token(&token.access_token).await.unwrap(),
            "revoking twice is a no-op"
        );
        assert_eq!(
            store.organization_for(&good).await.unwrap(),
            None,
            "{kind:?}: revoked"
        );

        let second = store.create_token(&org).await.unwrap().unwrap();
        let creds =
            ApiCredentials::from_headers(Some(&second.access_token), Some(&second.secret_token))
                .unwrap();
        assert_eq!(store.organization_for(&creds).await.unwrap(), Some(org));
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_looked_up_is_confirmed_for_the_cache_ttl_and_a_revocation_elsewhere_holds_after_it()
 {
    const TTL: std::time::Duration = std::time::Duration::from_millis(400);
    on_every_backend!(|store, kind, db| {
        let mut config = db.config();
        config.token_cache_ttl = TTL;
        let cached = db.store_with(&config).await;
        let (org, token) = store
            .create_organization(&OrganizationName::parse("Acme").unwrap())
            .await
            .unwrap();
        let good =
            ApiCredentials::from_headers(Some(&token.access_token), Some(&token.secret_token))
                .unwrap();
        let wrong_secret =
            ApiCredentials::from_headers(Some(&token.access_token), Some("das_nope")).unwrap();
        let looked_up = std::time::Instant::now();
        assert_eq!(
            cached.organization_for(&good).await.unwrap(),
            Some(org.clone())
        );
        let kept_until = std::time::Instant::now() + TTL;

        // Revoked by another instance (the CLI's store): the cached instance still
        // confirms the pair it looked up (without a lookup), and still compares the
        // secret; never past the TTL.
        assert!(store.revoke_token(&token.access_token).await.unwrap());
        assert_eq!(
            store.organization_for(&good).await.unwrap(),
            None,
            "{kind:?}"
        );
        if looked_up.elapsed() < TTL {
            assert_eq!(
                cached.organization_for(&good).await.unwrap(),
                Some(org.clone()),
                "{kind:?}: confirmed from the cache"
            );
        }
        assert_eq!(
            cached.organization_for(&wrong_secret).await.unwrap(),
            None,
            "{kind:?}"
        );
        tokio::time::sleep(kept_until.saturating_duration_since(std::time::Instant::now())).await;
        assert_eq!(
            cached.organization_for(&good).await.unwrap(),
            None,
            "{kind:?}: revoked elsewhere, rejected once the TTL has passed"
        );

        // Revoked through the caching store itself: rejected at once.
        let second = store.create_token(&org).await.unwrap().unwrap();
        let creds =
            ApiCredentials::from_headers(Some(&second.access_token), Some(&second.secret_token))
                .unwrap();
        assert_eq!(
            cached.organization_for(&creds).await.unwrap(),
            Some(org.clone())
        );
        assert!(cached.revoke_token(&second.access_token).await.unwrap());
        assert_eq!(
            cached.organization_for(&creds).await.unwrap(),
            None,
            "{kind:?}"
        );
    });
}

/// `token` with the character at `index` replaced by another base64url character.
fn altered(token: &str, index: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn access_tokens_carry_a_tag_that_every_instance_checks_with_one_shared_key() {
    for kind in backends() {
        let db = TestDatabase::new(kind).await;
        let store = db.store().await;
        let (org, token) = store
            .create_organization(&OrganizationName::parse("Acme").unwrap())
            .await
            .unwrap();
        let with_access = |access: &str| {
            ApiCredentials::from_headers(Some(access), Some(&token.secret_token)).unwrap()
        };
        // A second instance on the same database uses the key the first one created.
        let other_instance = db.store().await;
        assert_eq!(
            other_instance
                .organization_for(&with_access(&token.access_token))
                .await
                .unwrap(),
            Some(org.clone()),
            "{kind:?}"
        );
        let from_other = other_instance.create_token(&org).await.unwrap().unwrap();
        let creds = ApiCredentials::from_headers(
            Some(&from_other.access_token),
            Some(&from_other.secret_token),
        )
        .unwrap();
        assert_eq!(store.organization_for(&creds).await.unwrap(), Some(org));

        // One character changed in the random part or in the tag: the tag no longer
        // verifies. Wrong prefix, wrong length: not ours either.
        let last = token.access_token.len() - 1;
        for forged in [
            altered(&token.access_token, 4),
            altered(&token.access_token, 40),
            altered(&token.access_token, last - 1),
            token.access_token.replacen("dak_", "das_", 1),
            token.access_token[..last].to_owned(),
            format!("{}A", token.access_token),
            format!("dak_{}", "A".repeat(64)),
        ] {
            assert_eq!(
                store.organization_for(&with_access(&forged)).await.unwrap(),
                None,
                "{kind:?}: {forged}"
            );
        }
        drop((store, other_instance));
        drop(db);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issues_no_token_for_an_unknown_organization() {
    on_every_backend!(|store, _kind| {
        let issued = store
            .create_token(&OrganizationId::new("nope"))
            .await
            .unwrap();
        assert!(issued.is_none());
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn registering_on_a_new_domain_creates_it_with_the_given_key() {
    on_every_backend!(|store, kind| {
        let org = org(&store, "Acme").await;

        let registered = store
            .register_sender(registration(
                &org,
                "noreply@example.com",
                Some(key("abc123")),
            ))
            .await
            .unwrap();

        assert!(registered.domain_created, "{kind:?}");
        assert_eq!(registered.domain.selector.as_str(), "abc123");
        assert_eq!(registered.domain.organization, org);
        let domain = DomainName::parse("example.com").unwrap();
        assert_eq!(
            store.find_domain(&domain).await.unwrap(),
            Some(registered.domain)
        );
        assert_eq!(
            store.sealed_key(&domain).await.unwrap(),
            Some(SealedKey(b"abc123".to_vec()))
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_signs_with_the_key_it_was_created_with_and_a_missing_one_has_none() {
    on_every_backend!(|store, kind| {
        let org = org(&store, "Acme").await;
        store
            .register_sender(registration(&org, "a@example.com", Some(key("first"))))
            .await
            .unwrap();
        // A later sender on the same domain brings a key the store must not use.
        store
            .register_sender(registration(&org, "b@example.com", Some(key("second"))))
            .await
            .unwrap();

        let signing = store
            .signing_key(&DomainName::parse("example.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(signing.selector.as_str(), "first", "{kind:?}");
        assert_eq!(signing.sealed_private_key, SealedKey(b"first".to_vec()));
        assert_eq!(
            store
                .signing_key(&DomainName::parse("example.org").unwrap())
                .await
                .unwrap(),
            None,
            "{kind:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sender_reuses_the_domain_and_becomes_the_only_active_one() {
    on_every_backend!(|store, kind| {
        let org = org(&store, "Acme").await;
        store
            .register_sender(registration(&org, "first@example.com", Some(key("abc123"))))
            .await
            .unwrap();

        let second = store
            .register_sender(registration(
                &org,
                "second@example.com",
                Some(key("zzz999")),
            ))
            .await
            .unwrap();

        assert!(!second.domain_created, "{kind:?}");
        assert_eq!(
            second.domain.selector.as_str(),
            "abc123",
            "the first key is kept"
        );
        let detail = store
            .domain_detail(&org, &DomainName::parse("example.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        let active: Vec<_> = detail
            .senders
            .iter()
            .filter(|s| s.active)
            .map(|s| s.email.as_str())
            .collect();
        assert_eq!(active, ["second@example.com"]);
        assert_eq!(detail.senders.len(), 2);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_active_sender_is_per_organization_across_domains() {
    on_every_backend!(|store, _kind| {
        let org = org(&store, "Acme").await;
        store
            .register_sender(registration(&org, "a@one.example", Some(key("k1"))))
            .await
            .unwrap();
        store
            .register_sender(registration(&org, "b@two.example", Some(key("k2"))))
            .await
            .unwrap();

        let one = store
            .domain_detail(&org, &DomainName::parse("one.example").unwrap())
            .await
            .unwrap()
            .unwrap();
        let two = store
            .domain_detail(&org, &DomainName::parse("two.example").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!one.senders[0].active);
        assert!(two.senders[0].active);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn another_organizations_domain_is_taken() {
    on_every_backend!(|store, _kind| {
        let acme = org(&store, "Acme").await;
        let other = org(&store, "Other").await;
        store
            .register_sender(registration(&acme, "a@example.com", Some(key("k1"))))
            .await
            .unwrap();

        let error = store
            .register_sender(registration(&other, "b@example.com", Some(key("k2"))))
            .await
            .unwrap_err();

        assert!(matches!(error, RegisterError::DomainTaken), "{error:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_is_taken_regardless_of_case() {
    on_every_backend!(|store, _kind| {
        let org = org(&store, "Acme").await;
        store
            .register_sender(registration(&org, "noreply@example.com", Some(key("k1"))))
            .await
            .unwrap();

        let error = store
            .register_sender(registration(&org, "NoReply@EXAMPLE.com", None))
            .await
            .unwrap_err();

        assert!(matches!(error, RegisterError::EmailTaken), "{error:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_domain_without_a_key_asks_for_one() {
    on_every_backend!(|store, _kind| {
        let org = org(&store, "Acme").await;
        let error = store
            .register_sender(registration(&org, "a@example.com", None))
            .await
            .unwrap_err();
        assert!(matches!(error, RegisterError::KeyRequired), "{error:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_is_turned_on_when_asked_and_never_off_by_a_later_call() {
    on_every_backend!(|store, _kind| {
        let org = org(&store, "Acme").await;
        let first = store
            .register_sender(registration(&org, "a@example.com", Some(key("k1"))))
            .await
            .unwrap();
        assert!(!first.domain.inbound_enabled);

        let mut on = registration(&org, "b@example.com", None);
        on.enable_inbound = true;
        assert!(
            store
                .register_sender(on)
                .await
                .unwrap()
                .domain
                .inbound_enabled
        );

        let later = store
            .register_sender(registration(&org, "c@example.com", None))
            .await
            .unwrap();
        assert!(later.domain.inbound_enabled);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_are_scoped_to_the_owning_organization() {
    on_every_backend!(|store, _kind| {
        let acme = org(&store, "Acme").await;
        let other = org(&store, "Other").await;
        let mut reg = registration(&acme, "a@example.com", Some(key("k1")));
        reg.reply_to = Some(EmailAddress::parse("help@example.com").unwrap());
        store.register_sender(reg).await.unwrap();
        store
            .register_sender(registration(&acme, "a@b.example", Some(key("k2"))))
            .await
            .unwrap();
        let name = DomainName::parse("example.com").unwrap();

        let listed: Vec<_> = store
            .list_domains(&acme, &all())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.name.to_string())
            .collect();
        assert_eq!(listed, ["b.example", "example.com"]);
        assert!(
            store
                .list_domains(&other, &all())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        let first = store
            .list_domains(
                &acme,
                &Page {
                    after: None,
                    limit: 1,
                },
            )
            .await
            .unwrap();
        assert_eq!(first.next.as_deref(), Some("b.example"));
        let second = store
            .list_domains(
                &acme,
                &Page {
                    after: first.next,
                    limit: 1,
                },
            )
            .await
            .unwrap();
        assert_eq!(second.items[0].name.to_string(), "example.com");
        assert_eq!(second.next, None, "the last page has no next");
        assert_eq!(store.domain_detail(&other, &name).await.unwrap(), None);
        let detail = store.domain_detail(&acme, &name).await.unwrap().unwrap();
        assert_eq!(
            detail.senders[0].reply_to.as_deref(),
            Some("help@example.com")
        );
    });
}

// --- Concurrency invariants --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_registrations_on_one_new_domain_converge_on_one_key() {
    on_every_backend!(|store, kind| {
        let org = org(&store, "Acme").await;
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = Arc::clone(&store);
                let reg = registration(
                    &org,
                    &format!("sender{i}@example.com"),
                    Some(key(&format!("sel{i}"))),
                );
                tokio::spawn(async move { store.register_sender(reg).await })
            })
            .collect();

        let mut selectors = HashSet::new();
        let mut created = 0;
        for task in tasks {
            let registered = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            created += usize::from(registered.domain_created);
            selectors.insert(registered.domain.selector.to_string());
        }

        assert_eq!(created, 1, "{kind:?}: exactly one call created the domain");
        assert_eq!(selectors.len(), 1, "{kind:?}: every call saw the same key");
        assert_eq!(
            store.list_domains(&org, &all()).await.unwrap().items.len(),
            1
        );
        let detail = store
            .domain_detail(&org, &DomainName::parse("example.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.senders.len(), 50);
        assert_eq!(
            detail.senders.iter().filter(|s| s.active).count(),
            1,
            "{kind:?}: one active sender"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_organizations_racing_for_one_domain_leave_one_owner() {
    on_every_backend!(|store, kind| {
        let acme = org(&store, "Acme").await;
        let other = org(&store, "Other").await;
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = Arc::clone(&store);
                let owner = if i % 2 == 0 {
                    acme.clone()
                } else {
                    other.clone()
                };
                let reg = registration(
                    &owner,
                    &format!("s{i}@race.example"),
                    Some(key(&format!("k{i}"))),
                );
                tokio::spawn(async move { (owner, store.register_sender(reg).await) })
            })
            .collect();

        let mut winners = HashSet::new();
        let mut taken = 0;
        for task in tasks {
            match task.await.unwrap() {
                (owner, Ok(_)) => {
                    winners.insert(owner);
                }
                (_, Err(RegisterError::DomainTaken)) => taken += 1,
                (_, Err(e)) => panic!("{kind:?}: unexpected {e:?}"),
            }
        }

        assert_eq!(winners.len(), 1, "{kind:?}: one organization won");
        assert_eq!(taken, 20, "{kind:?}: every call of the loser was refused");
        let winner = winners.into_iter().next().unwrap();
        let loser = if winner == acme { &other } else { &acme };
        assert!(
            store
                .list_domains(loser, &all())
                .await
                .unwrap()
                .items
                .is_empty(),
            "no orphan rows for the loser"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_registrations_of_one_email_admit_exactly_one() {
    on_every_backend!(|store, kind| {
        let org = org(&store, "Acme").await;
        store
            .register_sender(registration(&org, "first@example.com", Some(key("k0"))))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                let reg = registration(&org, "same@example.com", None);
                tokio::spawn(async move { store.register_sender(reg).await })
            })
            .collect();

        let (mut ok, mut taken) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(RegisterError::EmailTaken) => taken += 1,
                Err(e) => panic!("{kind:?}: unexpected {e:?}"),
            }
        }

        assert_eq!((ok, taken), (1, 19), "{kind:?}");
    });
}

// --- Availability ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_reported_as_unavailable() {
    let mut config = store_diesel::StoreConfig::new("postgres://nobody:nothing@127.0.0.1:1/none");
    config.wait_timeout = std::time::Duration::from_millis(500);
    config.connect_timeout = std::time::Duration::from_millis(500);
    let store = Store::connect(&config).unwrap();
    assert_eq!(store.kind(), BackendKind::Postgres);

    let error = store.ping().await.unwrap_err();

    assert!(
        matches!(error, domain_core::ports::store::StoreError::Unavailable(_)),
        "{error:?}"
    );
    let credentials = ApiCredentials::from_headers(Some("a"), Some("b")).unwrap();
    assert!(matches!(
        store.organization_for(&credentials).await.unwrap_err(),
        domain_core::ports::credentials::CredentialsError::Unavailable(_)
    ));
}

// --- Master-key rotation -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn resealing_replaces_every_key_in_one_transaction() {
    on_every_backend!(|store, kind| {
        let org = org(&store, "Acme").await;
        for (email, sel) in [("a@one.example", "k1"), ("b@two.example", "k2")] {
            store
                .register_sender(registration(&org, email, Some(key(sel))))
                .await
                .unwrap();
        }

        let count = store
            .reseal_keys(
                &|domain, sealed| {
                    let mut next = sealed.0.clone();
                    next.extend_from_slice(domain.as_ascii().as_bytes());
                    Ok(SealedKey(next))
                },
                &|_, sealed| Ok(sealed.to_vec()),
                &|_, _, kept| Ok(kept.to_vec()),
            )
            .await
            .unwrap();

        assert_eq!(count.keys, 2, "{kind:?}");
        let one = store
            .sealed_key(&DomainName::parse("one.example").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.0, b"k1one.example");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_reseal_changes_nothing() {
    on_every_backend!(|store, kind| {
        let org = org(&store, "Acme").await;
        for (email, sel) in [("a@one.example", "k1"), ("b@two.example", "k2")] {
            store
                .register_sender(registration(&org, email, Some(key(sel))))
                .await
                .unwrap();
        }

        let error = store
            .reseal_keys(
                &|domain, sealed| {
                    if domain.as_ascii() == "two.example" {
                        return Err("cannot open".into());
                    }
                    Ok(SealedKey([sealed.0.as_slice(), b"!"].concat()))
                },
                &|_, sealed| Ok(sealed.to_vec()),
                &|_, _, kept| Ok(kept.to_vec()),
            )
            .await
            .unwrap_err();

        assert!(
            matches!(&error, ResealError::Key { domain, .. } if domain == "two.example"),
            "{kind:?}: {error:?}"
        );
        let one = store
            .sealed_key(&DomainName::parse("one.example").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.0, b"k1", "{kind:?}: the first key was rolled back");
    });
}
