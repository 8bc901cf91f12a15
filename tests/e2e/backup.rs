//! `domain-api backup --to FILE`: a consistent copy of the SQLite database taken
//! while it serves and is written to, restored elsewhere with its master key, opens
//! every domain's DKIM key and signs mail that verifies.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use dns_hickory::test_support::TestDnsServer;
use mail_auth::DkimResult;
use store_diesel::BackendKind;

use crate::helpers::{Org, TestApp, spawn_app, spawn_sibling_with};
use crate::signing::verify;

/// Every domain the organization has on `app`, across pages.
fn domains(app: &TestApp, org: &Org) -> Vec<String> {
    let mut names = Vec::new();
    let mut after = String::new();
    loop {
        let answer = app.request(
            "GET",
            &format!("/api/v1/emails/domains?limit=1000{after}"),
            &[
                ("X-Api-Access-Token", org.access.as_str()),
                ("X-Api-Secret-Token", org.secret.as_str()),
            ],
            b"",
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let json = answer.json();
        for domain in json["domains"].as_array().unwrap() {
            names.push(domain["domain"].as_str().unwrap().to_owned());
        }
        match json["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return names,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_under_write_load_restores_with_every_key_opening() {
    let dns = TestDnsServer::start_in_thread();
    let app = spawn_app(BackendKind::Sqlite).await;
    let org = app.create_org("Acme");
    let backup = app.dir.path().join("copy.db");
    // Domain → (DKIM record name, value), as generate answered.
    let published: Mutex<HashMap<String, (String, String)>> = Mutex::new(HashMap::new());
    let stop = AtomicBool::new(false);

    let (before, output) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let domain = format!("d{i}.backup.example");
                let answer = app.generate(&org, &format!(r#"{{"email":"a@{domain}"}}"#));
                assert_eq!(answer.status, 201, "{}", answer.body);
                let json = answer.json();
                let (name, value) = json.as_object().unwrap().iter().nth(1).unwrap();
                published
                    .lock()
                    .unwrap()
                    .insert(domain, (name.clone(), value.as_str().unwrap().to_owned()));
                i += 1;
            }
        });
        while published.lock().unwrap().len() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let before = published.lock().unwrap().len();
        let output = app.cli(&["backup", "--to", backup.to_str().unwrap()]);
        // A few more writes after the copy, then stop.
        let after = published.lock().unwrap().len();
        while published.lock().unwrap().len() < after + 3 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        (before, output)
    });
    let (ok, stdout, stderr) = output;
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["backup"], backup.display().to_string());
    assert!(json["bytes"].as_u64().unwrap() > 0);
    assert!(stderr.contains("holds no master key"), "{stderr}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (ok, _, stderr) = app.cli(&["backup", "--to", backup.to_str().unwrap()]);
    assert!(
        !ok && stderr.contains("exists"),
        "never over a file: {stderr}"
    );

    // Restore into a fresh directory: the copy and the master key, nothing else.
    let restored = tempfile::tempdir().unwrap();
    let data = restored.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(&backup, data.join("domain-api.db")).unwrap();
    let source = Path::new(
        app.env_value("DOMAIN_API_DATABASE_URL")
            .strip_prefix("sqlite://")
            .unwrap(),
    )
    .parent()
    .unwrap();
    std::fs::copy(source.join("master.key"), data.join("master.key")).unwrap();
    let url = format!("sqlite://{}", data.join("domain-api.db").display());
    // The start itself refuses a key that opens none of the keys (tests/e2e/operations.rs).
    let copy = spawn_sibling_with(&app, &[("DOMAIN_API_DATABASE_URL", &url)]);

    let mut in_copy = domains(&copy, &org);
    in_copy.sort();
    let published = published.into_inner().unwrap();
    assert!(
        in_copy.len() >= before && in_copy.len() < published.len(),
        "the copy holds the domains made before it ({before}) and not those after: {} of {}",
        in_copy.len(),
        published.len()
    );
    for domain in &in_copy {
        let (name, value) = &published[domain];
        dns.add_txt_value(name, value);
        let message = format!(
            "From: <a@{domain}>\r\nTo: b@example.net\r\nSubject: restored\r\n\r\nHello\r\n"
        );
        let (ok, signed, stderr) = copy.cli_with_stdin(
            &[],
            &["dkim", "sign", "--domain", domain],
            message.as_bytes(),
        );
        assert!(ok, "{domain}: {stderr}");
        assert_eq!(
            verify(dns.addr(), &signed).await,
            [DkimResult::Pass],
            "{domain}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_refuses_postgresql_and_points_at_pg_dump() {
    if store_diesel::test_support::postgres_url().is_none() {
        eprintln!(
            "note: DOMAIN_API_TEST_POSTGRES_URL is not set; this PostgreSQL test did not run"
        );
        return;
    }
    let app = spawn_app(BackendKind::Postgres).await;
    let target = app.dir.path().join("copy.db");
    let (ok, stdout, stderr) = app.cli(&["backup", "--to", target.to_str().unwrap()]);
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(!target.exists());
}
