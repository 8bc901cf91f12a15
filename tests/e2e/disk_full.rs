//! The SQLite database's disk filling up: every request that fails on it answers 503
//! `Service temporarily unavailable` with `Retry-After` (never a 500), reads go on,
//! `/metrics` counts the failures by kind (`domain_api_db_errors_total`) and the log
//! says `database disk is full` at most once a minute, not once per request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use store_diesel::BackendKind;

use crate::helpers::{Answer, Org, TestApp, spawn_app, spawn_sibling_under};

/// A bound on the registrations that fill the disk, and how many more are sent once
/// writes fail.
const MAX_REGISTRATIONS: usize = 200;
const AFTER_FULL: usize = 15;

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_answers_503_is_counted_as_disk_full_and_logged_at_most_once_a_minute() {
    let (first, org) = database_with_an_org().await;
    let (source, file) = database_files(&first);
    // A mount point on the real file system; the tmpfs over it is the server's alone.
    let disk = first.dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    // CI runs as root; a machine that can mount no tmpfs of its own fails the test
    // rather than skip it silently.
    let unshare = private_mounts(&disk).expect(
        "the full-disk test mounts a private tmpfs: run it as root, or where user \
         namespaces are allowed (`unshare -rm`)",
    );
    // A tmpfs a little larger than the database's files: a few registrations fit,
    // then SQLite's writes fail with ENOSPC (SQLITE_FULL), as on a full disk.
    let script = r#"set -e; disk=$1; source=$2; size=$3; shift 3
        mount -t tmpfs -o "size=$size,mode=0700" domain-api-test "$disk"
        cp -a "$source"/. "$disk"/
        exec "$@""#;
    let size = format!("{}k", files(&source).sum::<u64>() / 1024 + 256);
    let (disk_arg, source_arg) = (disk.display().to_string(), source.display().to_string());
    let mut wrapper = unshare.to_vec();
    wrapper.extend(["sh", "-c", script, "sh", &disk_arg, &source_arg, &size]);
    let url = format!("sqlite://{}", disk.join(&file).display());
    let app = spawn_sibling_under(&first, &[("DOMAIN_API_DATABASE_URL", &url)], &wrapper);
    let started = Instant::now();

    let (created, failed) = fill(&app, &org);

    assert!(created > 0, "registrations fit before the disk is full");
    assert!(!failed.is_empty(), "the disk never filled up");
    let counts = db_error_counts(&app);
    assert!(counts.disk_full >= 1, "{counts:?}");
    let log = app.log();
    let logged = log.matches("database disk is full").count();
    let minutes = started.elapsed().as_secs() / 60;
    assert!(
        (1..=1 + usize::try_from(minutes).unwrap()).contains(&logged),
        "{logged} × `database disk is full` in {minutes} min, {} failed requests; log:\n{log}",
        failed.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_size_limit_answers_503_and_is_counted_as_an_io_error() {
    let (first, org) = database_with_an_org().await;
    let (source, file) = database_files(&first);
    let largest = files(&source).max().unwrap();
    // RLIMIT_FSIZE a little above the largest file: a write past it fails with EFBIG
    // (SIGXFSZ ignored, `trap '' XFSZ` is inherited across exec), which SQLite
    // reports as an I/O error (SQLITE_IOERR_WRITE), not as a full disk: only ENOSPC
    // is SQLITE_FULL.
    let fsize = format!("--fsize={}", largest + 150_000);
    let wrapper = [
        "prlimit",
        &fsize,
        "--",
        "sh",
        "-c",
        "trap '' XFSZ; exec \"$@\"",
        "sh",
    ];
    let url = format!("sqlite://{}", source.join(&file).display());
    let app = spawn_sibling_under(&first, &[("DOMAIN_API_DATABASE_URL", &url)], &wrapper);

    let (_, failed) = fill(&app, &org);

    assert!(
        !failed.is_empty(),
        "no write ever reached the file-size limit"
    );
    let counts = db_error_counts(&app);
    assert!(counts.io >= 1, "{counts:?}");
}

/// A server on a fresh SQLite database with one organization, the database's
/// master key beside it; the server itself is stopped so that its files can be
/// copied or limited.
async fn database_with_an_org() -> (TestApp, Org) {
    let mut first = spawn_app(BackendKind::Sqlite).await;
    let org = first.create_org("Acme");
    first.kill();
    (first, org)
}

/// The directory holding `app`'s SQLite database (and its master key), and the
/// database file's name.
fn database_files(app: &TestApp) -> (PathBuf, PathBuf) {
    let path = Path::new(
        app.env_value("DOMAIN_API_DATABASE_URL")
            .strip_prefix("sqlite://")
            .expect("a SQLite database"),
    );
    (
        path.parent().unwrap().to_path_buf(),
        PathBuf::from(path.file_name().unwrap()),
    )
}

/// The sizes of the files in `dir`.
fn files(dir: &Path) -> impl Iterator<Item = u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
}

/// The `unshare` command under which a process may mount a tmpfs of its own that
/// no one else sees: a mount namespace (root), else a user namespace as well.
fn private_mounts(probe: &Path) -> Option<&'static [&'static str]> {
    const CANDIDATES: [&[&str]; 2] = [
        &["unshare", "--mount", "--propagation", "private", "--"],
        &[
            "unshare",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "--",
        ],
    ];
    CANDIDATES.into_iter().find(|unshare| {
        Command::new(unshare[0])
            .args(&unshare[1..])
            .args(["sh", "-c", r#"mount -t tmpfs -o size=64k probe "$1""#, "sh"])
            .arg(probe)
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// Registers new domains until writes fail, then `AFTER_FULL` more, reading the
/// domains list after each; returns how many were created and the failures. Every
/// failure — of a write or a read — must be a 503 with `Retry-After`, never a 500.
fn fill(app: &TestApp, org: &Org) -> (usize, Vec<Answer>) {
    let mut created = 0;
    let mut failed = Vec::new();
    for i in 0..MAX_REGISTRATIONS {
        let answer = app.generate(org, &format!(r#"{{"email":"a@fill{i}.example"}}"#));
        match answer.status {
            201 => created += 1,
            _ => {
                assert_unavailable(&answer, "generate");
                failed.push(answer);
            }
        }
        let read = app.request(
            "GET",
            "/api/v1/emails/domains",
            &[
                ("X-Api-Access-Token", &org.access),
                ("X-Api-Secret-Token", &org.secret),
            ],
            b"",
        );
        if read.status != 200 {
            assert_unavailable(&read, "the domains list");
        }
        if failed.len() >= AFTER_FULL {
            break;
        }
    }
    (created, failed)
}

fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "Service temporarily unavailable"),
        "{what}"
    );
    assert_eq!(answer.header("retry-after"), Some("1"), "{what}");
}

/// `domain_api_db_errors_total` as `/metrics` shows it; every kind must be there.
#[derive(Debug)]
struct Counts {
    disk_full: u64,
    io: u64,
}

fn db_error_counts(app: &TestApp) -> Counts {
    let metrics = app.get("/metrics").unwrap().body;
    let count = |kind: &str| {
        let series = format!("domain_api_db_errors_total{{kind=\"{kind}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
            .parse::<u64>()
            .unwrap()
    };
    for kind in ["connection", "timeout", "shutdown", "resources"] {
        count(kind);
    }
    Counts {
        disk_full: count("disk_full"),
        io: count("io"),
    }
}
