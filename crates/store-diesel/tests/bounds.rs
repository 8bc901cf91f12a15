//! Bounded waits and private files. A lock held elsewhere makes a call fail as
//! unavailable once the statement timeout has run out, instead of hanging and
//! holding a pooled connection; SQLite's database files are the owner's alone.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
use domain_core::OrganizationName;
use domain_core::ownership::CreationLimits;
use domain_core::ports::InfraError;
use domain_core::ports::admin::Administration as _;
use domain_core::ports::lifecycle::SenderStore as _;
use domain_core::ports::store::{
    CreationRules, DomainStore as _, RegisterError, SenderRegistration,
};
use domain_core::{DkimKey, EmailAddress, OrganizationId, SealedKey, Selector};
use store_diesel::test_support::{TestDatabase, backends};
use store_diesel::{BackendKind, Store, StoreConfig};

/// The statement timeout under test: short, so the tests are quick.
const BOUND: Duration = Duration::from_millis(300);

/// Reached only by a call that hangs instead of giving up at its bound, which is the
/// failure these tests exist to catch. Not a timing assertion: any run that returns
/// at all, however slowly, passes this guard.
const HANG: Duration = Duration::from_secs(120);

async fn returns<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, call)
        .await
        .expect("the call hung instead of giving up at the statement timeout")
}

/// Registering `email` for `org`, on a new domain.
fn sender(org: &OrganizationId, email: &str) -> SenderRegistration {
    SenderRegistration {
        organization: org.clone(),
        email: EmailAddress::parse(email).unwrap(),
        reply_to: None,
        new_key: Some(DkimKey {
            selector: Selector::new("sel1").unwrap(),
            public_key: "MIIBIjANBgkqhkisel1".to_owned(),
            sealed_private_key: SealedKey(b"sealed".to_vec()),
        }),
        enable_inbound: false,
        creation: CreationRules {
            ancestors: Vec::new(),
            limits: CreationLimits::default(),
            first_check_at: chrono::Utc::now(),
        },
    }
}

/// New organizations called `names`.
async fn organizations<const N: usize>(store: &Store, names: [&str; N]) -> [OrganizationId; N] {
    let mut ids = Vec::with_capacity(N);
    for name in names {
        let (id, _) = store
            .create_organization(&OrganizationName::parse(name).unwrap())
            .await
            .unwrap();
        ids.push(id);
    }
    ids.try_into().unwrap()
}

fn bounded_config(db: &TestDatabase) -> StoreConfig {
    let mut config = db.config();
    config.statement_timeout = BOUND;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_lock_held_elsewhere_answers_unavailable_and_spares_other_organizations() {
    if !backends().contains(&BackendKind::Postgres) {
        return;
    }
    let db = TestDatabase::new(BackendKind::Postgres).await;
    let mut config = bounded_config(&db);
    // One connection: a call stuck on the lock for good would hold it, and every
    // other organization's call would wait for the pool until it gave up.
    config.max_connections = 1;
    let store = Arc::new(db.store_with(&config).await);
    let [stuck, other] = organizations(&store, ["Stuck", "Other"]).await;
    // Another session holds the organization's row lock in an open transaction.
    let mut holder = AsyncPgConnection::establish(&db.url).await.unwrap();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM organizations WHERE id = '{}' FOR UPDATE;",
            stuck.as_str()
        ))
        .await
        .unwrap();

    let error = returns(store.register_sender(sender(&stuck, "a@stuck.example")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegisterError::Infra(InfraError::Unavailable(_))),
        "{error:?}"
    );

    // The lock is still held. The pool's one connection came back, usable.
    returns(store.register_sender(sender(&other, "a@other.example")))
        .await
        .unwrap();
    // Both at once, in whichever order they get the connection.
    let (blocked, served) = tokio::join!(
        returns(store.register_sender(sender(&stuck, "b@stuck.example"))),
        returns(store.register_sender(sender(&other, "b@other.example"))),
    );
    assert!(
        matches!(
            blocked,
            Err(RegisterError::Infra(InfraError::Unavailable(_)))
        ),
        "{blocked:?}"
    );
    served.unwrap();

    // The lock released, the organization registers again.
    holder.batch_execute("ROLLBACK;").await.unwrap();
    returns(store.register_sender(sender(&stuck, "a@stuck.example")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_row_held_elsewhere_keeps_no_registration_waiting() {
    if !backends().contains(&BackendKind::Postgres) {
        return;
    }
    let db = TestDatabase::new(BackendKind::Postgres).await;
    let store = Arc::new(db.store_with(&bounded_config(&db)).await);
    let [held, other] = organizations(&store, ["Held", "Other"]).await;
    returns(store.register_sender(sender(&held, "a@held.example")))
        .await
        .unwrap();
    // Another session holds the domain's row as the inbound toggle, a rotation or
    // a check does: updated in an open transaction, without the organization's
    // lock. Nothing a registration writes is in that row, so it must not wait.
    let mut holder = AsyncPgConnection::establish(&db.url).await.unwrap();
    holder
        .batch_execute(
            "BEGIN; UPDATE domains SET inbound_enabled = inbound_enabled \
             WHERE name = 'held.example';",
        )
        .await
        .unwrap();

    // One batch, both organizations: a member waiting on the row would hold the
    // other organization's registration with it.
    // The registration on the held domain reuses it, as generate's does once it
    // has read the domain: a new domain's insert would wait to know whether the
    // name is still taken, a wait the held row's update really decides.
    let reuse = SenderRegistration {
        new_key: None,
        ..sender(&held, "b@held.example")
    };
    let (on_held, beside) = tokio::join!(
        returns(store.register_sender(reuse)),
        returns(store.register_sender(sender(&other, "a@other.example"))),
    );
    on_held.unwrap();
    beside.unwrap();
    assert!(
        returns(store.delete_sender(&held, "b@held.example"))
            .await
            .unwrap()
    );

    holder.batch_execute("ROLLBACK;").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_lock_held_elsewhere_answers_unavailable_on_sqlite() {
    let db = TestDatabase::new(BackendKind::Sqlite).await;
    let store = db.store_with(&bounded_config(&db)).await;
    let (org, _) = store
        .create_organization(&OrganizationName::parse("Acme").unwrap())
        .await
        .unwrap();
    let path = db.url.strip_prefix("sqlite://").unwrap();
    let mut holder = <diesel::SqliteConnection as diesel::Connection>::establish(path).unwrap();
    holder.batch_execute("BEGIN IMMEDIATE;").unwrap();

    let error = returns(store.register_sender(sender(&org, "a@acme.example")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegisterError::Infra(InfraError::Unavailable(_))),
        "{error:?}"
    );
    let error = returns(store.create_organization(&OrganizationName::parse("Other").unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(error, InfraError::Unavailable(_)), "{error:?}");

    holder.batch_execute("COMMIT;").unwrap();
    returns(store.register_sender(sender(&org, "a@acme.example")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_files_are_the_owners_alone_even_in_an_open_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = dir.path().join("domain-api.db");
    let store = Store::connect(&StoreConfig::new(format!(
        "sqlite://{}",
        database.display()
    )))
    .unwrap();
    store.migrate().await.unwrap();

    // A write through the pool, which keeps its connections open: the write-ahead
    // log and the shared-memory index exist now.
    store
        .create_organization(&OrganizationName::parse("Acme").unwrap())
        .await
        .unwrap();

    // (Under the usual umask, 022, SQLite alone would have made all three 0644.)
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", database.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
    }
}
