//! The lifecycle migration on a database populated by the previous schema: every
//! domain's key becomes its active key, sealed bytes intact, on both backends.

mod common;

use chrono::{TimeZone as _, Utc};
use domain_core::lifecycle::{DomainStatus, KeyState, Page};
use domain_core::ownership::CreationLimits;
use domain_core::ports::admin::Administration;
use domain_core::ports::lifecycle::{EventStore, SenderStore};
use domain_core::ports::store::{DomainStore, RegisterError};
use domain_core::{DomainName, OrganizationId, SealedKey};
use store_diesel::BackendKind;
use store_diesel::test_support::{TestDatabase, backends};

/// The last migration before the lifecycle one.
const PREVIOUS_SCHEMA: &str = "20261127000001";

/// Sealed bytes with every kind of byte a text round trip could mangle.
const SEALED: [u8; 8] = [0x00, 0xff, 0x27, 0x5c, 0x0a, 0x80, 0x7f, 0x01];

#[tokio::test(flavor = "multi_thread")]
async fn every_existing_key_becomes_the_active_key_with_its_sealed_bytes_intact() {
    for kind in backends() {
        let db = TestDatabase::new(kind).await;
        let old = db.store_migrated_through(PREVIOUS_SCHEMA).await;
        let (sealed, created) = match kind {
            BackendKind::Postgres => ("'\\x00ff275c0a807f01'::bytea", "'2026-11-01 10:00:00+00'"),
            BackendKind::Sqlite => ("x'00ff275c0a807f01'", "'2026-11-01 10:00:00+00:00'"),
        };
        old.execute_sql(&format!(
            "INSERT INTO organizations (id, name, created_at) VALUES ('org-1', 'Acme', {created});
             INSERT INTO domains (id, organization_id, name, dkim_selector, dkim_public_key,
                 dkim_private_key_sealed, inbound_enabled, created_at, updated_at)
             VALUES (7, 'org-1', 'example.com', 'sel2026', 'MIIBpublic', {sealed}, TRUE,
                 {created}, {created});
             INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at)
             VALUES ('org-1', 7, 'noreply@example.com', NULL, TRUE, {created});"
        ))
        .await;
        drop(old);

        let store = db.store().await;

        let org = OrganizationId::new("org-1");
        let name = DomainName::parse("example.com").unwrap();
        let detail = store.domain_detail(&org, &name).await.unwrap().unwrap();
        let created = Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
        assert_eq!(detail.keys.len(), 1, "{kind:?}");
        let key = &detail.keys[0];
        assert_eq!(
            (
                key.selector.as_str(),
                key.state,
                key.public_key.as_str(),
                key.created_at,
                key.activated_at,
                key.retired_at,
                key.revoked_at
            ),
            (
                "sel2026",
                KeyState::Active,
                "MIIBpublic",
                created,
                Some(created),
                None,
                None
            ),
            "{kind:?}"
        );
        assert_eq!(
            store.sealed_key(&name).await.unwrap(),
            Some(SealedKey(SEALED.to_vec())),
            "{kind:?}: the sealed bytes are intact"
        );
        let domain = &detail.domain;
        assert_eq!(
            (
                domain.selector.as_str(),
                domain.public_key.as_str(),
                domain.inbound_enabled,
                domain.status,
                domain.verified_at,
                domain.last_checked_at,
                domain.next_check_at,
                domain.failed_checks
            ),
            (
                "sel2026",
                "MIIBpublic",
                true,
                DomainStatus::Pending,
                None,
                None,
                // Scheduled by the verifier's migration: due at once.
                Some(created),
                0
            ),
            "{kind:?}"
        );
        assert_eq!(detail.senders.len(), 1);
        let senders = store.list_senders(&org, &common::all()).await.unwrap();
        assert_eq!(senders.items[0].domain, "example.com");
        let none: Page<i64> = common::all();
        assert!(
            store
                .list_events(&org, &none)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        drop(store);
        drop(db);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sender_counts_move_to_rows_of_their_own_intact() {
    for kind in backends() {
        let db = TestDatabase::new(kind).await;
        // The schema that kept each domain's count in its row.
        let old = db.store_migrated_through("20261211000001").await;
        let created = match kind {
            BackendKind::Postgres => "'2026-12-01 10:00:00+00'",
            BackendKind::Sqlite => "'2026-12-01T10:00:00+00:00'",
        };
        old.execute_sql(&format!(
            "INSERT INTO organizations (id, name, created_at) VALUES ('org-1', 'Acme', {created});
             INSERT INTO domains (id, organization_id, name, created_at, updated_at)
             VALUES (7, 'org-1', 'example.com', {created}, {created}),
                    (8, 'org-1', 'example.org', {created}, {created});
             INSERT INTO dkim_keys (domain_id, selector, state, public_key,
                 private_key_sealed, created_at, activated_at)
             VALUES (7, 'sel1', 'active', 'MIIBpublic', 'sealed', {created}, {created}),
                    (8, 'sel1', 'active', 'MIIBpublic', 'sealed', {created}, {created});
             INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at)
             VALUES ('org-1', 7, 's1@example.com', NULL, TRUE, {created}),
                    ('org-1', 7, 's2@example.com', NULL, FALSE, {created}),
                    ('org-1', 7, 's3@example.com', NULL, FALSE, {created});"
        ))
        .await;
        drop(old);

        let store = db.store().await;
        let org = OrganizationId::new("org-1");
        let limits = CreationLimits {
            max_senders_per_domain: 4,
            ..common::GENEROUS
        };
        let register = |email: &str| {
            store.register_sender(common::registration_within(&org, email, None, limits))
        };
        // example.com had three: one more place. example.org had none: four.
        register("s4@example.com").await.unwrap();
        let full = register("s5@example.com").await;
        assert!(
            matches!(full, Err(RegisterError::SenderLimit)),
            "{kind:?}: {full:?}"
        );
        for email in [
            "t1@example.org",
            "t2@example.org",
            "t3@example.org",
            "t4@example.org",
        ] {
            register(email)
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {email}: {e:?}"));
        }
        let full = register("t5@example.org").await;
        assert!(
            matches!(full, Err(RegisterError::SenderLimit)),
            "{kind:?}: {full:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_migrations_names_those_not_applied_without_applying_any() {
    for kind in backends() {
        let db = TestDatabase::new(kind).await;
        let store = store_diesel::Store::connect(&db.config()).unwrap();
        let all = store.pending_migrations().await.unwrap();
        assert!(
            all.len() >= 8 && all[0] == "2026-11-26-000001_initial",
            "{kind:?}: a new database has every migration pending: {all:?}"
        );
        assert_eq!(
            store.pending_migrations().await.unwrap(),
            all,
            "{kind:?}: reading applied nothing"
        );

        let old = db.store_migrated_through(PREVIOUS_SCHEMA).await;
        assert_eq!(
            old.pending_migrations().await.unwrap(),
            all[2..].to_vec(),
            "{kind:?}: after the first two"
        );

        let migrated = db.store().await;
        assert!(
            migrated.pending_migrations().await.unwrap().is_empty(),
            "{kind:?}"
        );
    }
}
