//! `spawn_app()`: the real `domain-api` binary on a free port with a fresh database,
//! driven over real HTTP. Logs go to a file in the app's temp dir (echoed when
//! `TEST_LOG` is set) so tests can also check what the server wrote.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use store_diesel::BackendKind;
use store_diesel::test_support::TestDatabase;

use crate::fault_proxy::FaultProxy;

pub const BIN: &str = env!("CARGO_BIN_EXE_domain-api");

/// One running server and what it needs.
pub struct TestApp {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub kind: BackendKind,
    child: Child,
    agent: ureq::Agent,
    pub db: Option<TestDatabase>,
}

/// An HTTP answer: status, content type, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Token pair of an organization created through the CLI.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub access: String,
    pub secret: String,
}

impl Org {
    /// The same pair with the access token's last character changed: its tag no
    /// longer verifies, so the service must refuse it without a lookup.
    pub fn with_forged_access(&self) -> Self {
        let mut access = self.access.clone();
        let last = access.pop().expect("a non-empty access token");
        access.push(if last == 'A' { 'B' } else { 'A' });
        Self {
            access,
            ..self.clone()
        }
    }
}

/// Extra settings for a test app.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub env: Vec<(String, String)>,
}

pub async fn spawn_app(kind: BackendKind) -> TestApp {
    spawn_app_with(kind, Options::default()).await
}

/// Starts the binary on `kind`, waits until `/healthz` answers.
pub async fn spawn_app_with(kind: BackendKind, options: Options) -> TestApp {
    let db = TestDatabase::new(kind).await;
    let url = db.url.clone();
    let mut app = start(kind, &url, options, Some(db));
    app.wait_healthy();
    app
}

/// Starts the binary on the existing database at `url` (the test keeps that
/// database), waits until `/healthz` answers.
pub fn spawn_app_on(kind: BackendKind, url: &str, options: Options) -> TestApp {
    let mut app = start(kind, url, options, None);
    app.wait_healthy();
    app
}

/// Starts the binary on a fresh PostgreSQL database whose link goes through a
/// [`FaultProxy`]: `DOMAIN_API_DATABASE_URL` names the proxy's 127.0.0.1 port instead
/// of the server's host and port. The schema is migrated over a direct connection
/// first, so no fault can catch a migration half-way; faults are the test's to
/// inject once this returns (the app is healthy, nothing is faulted yet).
///
/// # Panics
/// When `DOMAIN_API_TEST_POSTGRES_URL` is not set, or its host and port cannot be
/// read (a Unix socket, say).
pub async fn spawn_app_through_proxy(options: Options) -> (TestApp, FaultProxy) {
    let db = TestDatabase::new(BackendKind::Postgres).await;
    drop(db.store().await);
    let (target, _) = host_port(&db.url);
    let target = target
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("resolve the PostgreSQL server {target}: {e}"))
        .find(SocketAddr::is_ipv4)
        .unwrap_or_else(|| panic!("no IPv4 address for the PostgreSQL server {target}"));
    let proxy = FaultProxy::start(target);
    let url = with_host_port(&db.url, proxy.addr());
    let mut app = start(BackendKind::Postgres, &url, options, Some(db));
    app.wait_healthy();
    (app, proxy)
}

/// The `host:port` of a `postgres://user:password@host:port/db?…` URL (port 5432
/// when none is given) and the byte range it spans in `url`.
fn host_port(url: &str) -> (String, std::ops::Range<usize>) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let authority = &url[start..end];
    assert!(
        !authority.is_empty() && !authority.contains(','),
        "the PostgreSQL URL must name one host (not a socket or a list): {authority:?}"
    );
    // `[::1]:5432`, `[::1]`, `host:5432`, `host`
    let has_port = match authority.rfind(']') {
        Some(bracket) => authority[bracket..].contains(':'),
        None => authority.contains(':'),
    };
    let host_port = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    (host_port, start..end)
}

/// `url` with its `host:port` replaced by `addr`.
fn with_host_port(url: &str, addr: SocketAddr) -> String {
    let (_, range) = host_port(url);
    format!("{}{addr}{}", &url[..range.start], &url[range.end..])
}

/// A second process on the same database as `other` (same master key).
pub fn spawn_sibling(other: &TestApp) -> TestApp {
    spawn_sibling_with(other, &[])
}

/// A second process on the same database as `other`, with `overrides` on top of its
/// settings.
pub fn spawn_sibling_with(other: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    spawn_sibling_under(other, overrides, &[])
}

/// Like [`spawn_sibling_with`], with the binary started under `wrapper`: a command
/// and its arguments that ends by running the command line it is given last (the
/// binary), e.g. `prlimit --fsize=N --` or `unshare --mount -- sh -c '…; exec "$@"' sh`.
pub fn spawn_sibling_under(
    other: &TestApp,
    overrides: &[(&str, &str)],
    wrapper: &[&str],
) -> TestApp {
    let mut env: Vec<(String, String)> = other
        .env
        .iter()
        .filter(|(k, _)| k != "DOMAIN_API_BIND" && k != "DOMAIN_API_ADDR_FILE")
        .filter(|(k, _)| !overrides.iter().any(|(name, _)| name == k))
        .cloned()
        .collect();
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let options = Options { env };
    let url = other.env_value("DOMAIN_API_DATABASE_URL").to_owned();
    let mut app = start_under(other.kind, &url, options, None, wrapper);
    app.wait_healthy();
    app
}

fn start(kind: BackendKind, url: &str, options: Options, db: Option<TestDatabase>) -> TestApp {
    start_under(kind, url, options, db, &[])
}

fn start_under(
    kind: BackendKind,
    url: &str,
    options: Options,
    db: Option<TestDatabase>,
    wrapper: &[&str],
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr_file = dir.path().join("addr");
    // Port 0: the kernel picks a free port and the server reports it in the file, so
    // no other process can take the port between choosing and binding it.
    let mut env: Vec<(String, String)> = vec![
        ("DOMAIN_API_BIND".into(), "127.0.0.1:0".into()),
        (
            "DOMAIN_API_ADDR_FILE".into(),
            addr_file.display().to_string(),
        ),
        ("DOMAIN_API_DATABASE_URL".into(), url.to_owned()),
        // Nothing listens on the discard port: MX lookups fail fast unless a test
        // points the resolver at its own DNS server.
        ("DOMAIN_API_DNS_SERVERS".into(), "127.0.0.1:9".into()),
        ("DOMAIN_API_DNS_TIMEOUT_MS".into(), "500".into()),
        // A debug build on a busy test machine is many times slower than production:
        // fifty registrations queued on one organization's row lock (or on the pool)
        // can wait longer than the 5 s defaults, and would answer 503. The invariant
        // tests are about convergence, not latency; the bounds themselves are tested in
        // crates/store-diesel/tests/bounds.rs and tests/e2e/availability.rs, which set
        // them lower.
        ("DOMAIN_API_DB_STATEMENT_TIMEOUT_MS".into(), "60000".into()),
        ("DOMAIN_API_DB_WAIT_TIMEOUT_MS".into(), "60000".into()),
        // The race and load tests create hundreds of domains a minute for one
        // organization; the quotas' own tests (ownership.rs) set the defaults back.
        ("DOMAIN_API_NEW_DOMAINS_PER_MINUTE".into(), "100000".into()),
        ("DOMAIN_API_MAX_DOMAINS_PER_ORG".into(), "10000000".into()),
        // The lifecycle tests rotate one domain several times within seconds; the
        // interval's own test (lifecycle.rs) sets the default back.
        ("DOMAIN_API_DKIM_ROTATION_INTERVAL".into(), "0".into()),
        // Tests verify and validate in loops; the budget's own test
        // (lifecycle.rs) sets it low.
        ("DOMAIN_API_LIVE_CHECKS_PER_MINUTE".into(), "1000000".into()),
        // Background checks would move domains on under tests that drive `verify`
        // themselves; the verifier's own tests (verifier.rs) turn it on.
        ("DOMAIN_API_VERIFIER".into(), "off".into()),
        ("RUST_LOG".into(), "info".into()),
    ];
    if kind == BackendKind::Postgres {
        // 32 fixed bytes, base64: a test-only key.
        env.push((
            "DOMAIN_API_MASTER_KEY".into(),
            "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=".into(),
        ));
    }
    for (k, v) in options.env {
        env.retain(|(key, _)| key != &k);
        env.push((k, v));
    }
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
    let mut child = command_under(wrapper, &env, dir.path().to_path_buf())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::from(log)
        })
        .spawn()
        .expect("start domain-api");
    let addr = bound_addr(&mut child, &addr_file, dir.path());
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    TestApp {
        addr,
        dir,
        env,
        kind,
        child,
        agent,
        db,
    }
}

/// Waits for the server to report the address it bound.
pub fn bound_addr(child: &mut Child, addr_file: &Path, dir: &Path) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(addr_file) {
            return text
                .trim()
                .parse()
                .expect("a socket address in the addr file");
        }
        if let Some(status) = child.try_wait().expect("poll child") {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            panic!("domain-api exited early ({status}); log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "domain-api did not report its address in {}",
        addr_file.display()
    );
}

fn command(env: &[(String, String)], cwd: PathBuf) -> Command {
    command_under(&[], env, cwd)
}

/// Clears `command`'s environment but for PATH and the clock of a calendar sweep
/// (scripts/calendar-sweep.sh runs the tests under libfaketime): the binary must see
/// the test's own time.
pub fn clear_env(command: &mut Command) {
    command.env_clear();
    for kept in [
        "PATH",
        "LD_PRELOAD",
        "FAKETIME",
        "FAKETIME_DONT_FAKE_MONOTONIC",
    ] {
        if let Some(value) = std::env::var_os(kept) {
            command.env(kept, value);
        }
    }
}

/// Waits up to 30 s for `child` (its standard error piped) to exit on its own:
/// its exit code and standard error. Kills it and panics, saying `what` and showing
/// its log, when it is still running then.
pub fn exit_within_30s(mut child: Child, what: &str) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("{what}; log:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The binary's command line, under `wrapper` when it is not empty.
fn command_under(wrapper: &[&str], env: &[(String, String)], cwd: PathBuf) -> Command {
    let mut command = match wrapper {
        [] => Command::new(BIN),
        [program, args @ ..] => {
            let mut command = Command::new(program);
            command.args(args).arg(BIN);
            command
        }
    };
    command.current_dir(cwd);
    clear_env(&mut command);
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn env_value(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!("domain-api exited early ({status}); log:\n{}", self.log());
            }
            if self.get("/healthz").is_ok_and(|a| a.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("domain-api did not become healthy; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs a CLI command with the server's configuration; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        self.cli_with(&[], args)
    }

    /// Like [`TestApp::cli`], with some variables replaced.
    pub fn cli_with(&self, overrides: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.retain(|(key, _)| key != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let output = command(&env, self.dir.path().to_path_buf())
            .args(args)
            .output()
            .expect("run domain-api");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Like [`TestApp::cli_with`], with `stdin` as standard input; returns (success,
    /// stdout as bytes, stderr).
    pub fn cli_with_stdin(
        &self,
        overrides: &[(&str, &str)],
        args: &[&str],
        stdin: &[u8],
    ) -> (bool, Vec<u8>, String) {
        use std::io::Write as _;

        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.retain(|(key, _)| key != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let mut child = command(&env, self.dir.path().to_path_buf())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run domain-api");
        let mut input = child.stdin.take().expect("piped stdin");
        let stdin = stdin.to_vec();
        // Written from another thread so that a large output cannot block the writer.
        let writer = std::thread::spawn(move || input.write_all(&stdin));
        let output = child.wait_with_output().expect("wait for domain-api");
        writer
            .join()
            .expect("stdin writer")
            .expect("write standard input");
        (
            output.status.success(),
            output.stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub fn create_org(&self, name: &str) -> Org {
        let (ok, stdout, stderr) = self.cli(&["org", "create", "--name", name]);
        assert!(ok, "org create failed: {stderr}");
        assert_eq!(
            stdout.lines().count(),
            1,
            "org create prints one line: {stdout:?}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&stdout).expect("org create prints JSON");
        let field = |k: &str| {
            json[k]
                .as_str()
                .unwrap_or_else(|| panic!("missing {k}: {stdout}"))
                .to_owned()
        };
        Org {
            id: field("organizationId"),
            access: field("accessToken"),
            secret: field("secretToken"),
        }
    }

    pub fn get(&self, path: &str) -> Result<Answer, ureq::Error> {
        let response = self.agent.get(&self.url(path)).call()?;
        Ok(answer(response))
    }

    /// Sends a request with arbitrary method, headers and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(body.to_vec()).expect("request");
        answer(self.agent.run(request).expect("HTTP request"))
    }

    /// POST /api/v1/emails/domains/generate as the seed's cURL example does it.
    pub fn generate(&self, org: &Org, body: &str) -> Answer {
        self.request(
            "POST",
            "/api/v1/emails/domains/generate",
            &[
                ("X-Api-Access-Token", &org.access),
                ("X-Api-Secret-Token", &org.secret),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }
}

/// Reads `response` whole into an [`Answer`].
pub fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        content_type,
        body,
        headers,
    }
}

impl TestApp {
    /// Kills the process at once (SIGKILL, as `kill -9`); the database stays, so a
    /// sibling can take over (`spawn_sibling`).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one HTTP/1.1 response with a `content-length` from `stream`: (head, body).
pub fn read_response(stream: &mut std::net::TcpStream) -> (String, String) {
    use std::io::Read as _;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream
                .read(&mut byte)
                .expect("an answer within the socket's read timeout"),
            1,
            "connection closed early"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn the_proxied_url_keeps_everything_but_host_and_port() {
    let proxy: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    for (url, host, proxied) in [
        (
            "postgres://u:p@127.0.0.1:5432/db?sslmode=disable",
            "127.0.0.1:5432",
            "postgres://u:p@127.0.0.1:40001/db?sslmode=disable",
        ),
        (
            "postgres://u:p%40x@localhost/db",
            "localhost:5432",
            "postgres://u:p%40x@127.0.0.1:40001/db",
        ),
        (
            "postgresql://[::1]:6543/db",
            "[::1]:6543",
            "postgresql://127.0.0.1:40001/db",
        ),
    ] {
        assert_eq!(host_port(url).0, host, "{url}");
        assert_eq!(with_host_port(url, proxy), proxied, "{url}");
    }
}
