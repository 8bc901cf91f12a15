//! Hostile input from outside, without credentials: nothing a client sends may
//! become a new metric series or an unbounded log line, and a body that does not
//! arrive may not hold a connection.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use store_diesel::BackendKind;

use crate::helpers::{Options, Org, TestApp, read_response, spawn_app, spawn_app_with};

/// Longest log line the server may write for any request in these tests.
const MAX_LOG_LINE: usize = 1024;

/// Sends `request` on a new connection and reads until the server closes it;
/// returns the status line.
fn exchange(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A server that refuses a huge request line may close before reading it all.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn arbitrary_method_tokens_and_paths_never_become_labels_or_long_log_lines() {
    let app = spawn_app(BackendKind::Sqlite).await;
    let filler = "X".repeat(200);
    for i in 0..300 {
        let request =
            format!("M{i:03}{filler} /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        let status = exchange(&app, request.as_bytes());
        assert!(status.starts_with("HTTP/1.1 4"), "{status:.80}");
    }
    // The request line of the report: 60,000 characters. The server may refuse it.
    let huge = "X".repeat(60_000);
    for i in 0..5 {
        let request =
            format!("M{i}{huge} /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        let status = exchange(&app, request.as_bytes());
        assert!(status.starts_with("HTTP/1.1 4"), "{status:.80}");
    }
    let long_path = "p".repeat(5_000);
    for i in 0..20 {
        let request =
            format!("GET /{long_path}{i} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        let status = exchange(&app, request.as_bytes());
        assert!(status.starts_with("HTTP/1.1 404"), "{status:.80}");
    }

    let metrics = app.get("/metrics").unwrap().body;

    assert!(
        !metrics.contains("XXXXXXXX"),
        "a method token became a label ({} bytes of metrics)",
        metrics.len()
    );
    assert!(!metrics.contains("pppppppp"), "a path became a label");
    assert!(
        metrics.contains(
            "domain_api_http_requests_total{route=\"/healthz\",method=\"_OTHER\",status=\"405\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "domain_api_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 20"
        ),
        "{metrics}"
    );
    assert!(
        metrics.len() < 32 * 1024,
        "/metrics grew to {} bytes",
        metrics.len()
    );
    let log = app.log();
    let longest = log.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        longest <= MAX_LOG_LINE,
        "a log line of {longest} characters"
    );
    assert!(
        !log.contains(&"X".repeat(100)),
        "a method token was logged whole"
    );
    assert!(
        log.contains("method=M000XXXX"),
        "the method is still logged, shortened"
    );
}

/// The head of a generate call announcing a 16000-byte body; `org`'s tokens, or none.
fn generate_head(org: Option<&Org>) -> String {
    let tokens = org.map_or(String::new(), |org| {
        format!(
            "X-Api-Access-Token: {}\r\nX-Api-Secret-Token: {}\r\n",
            org.access, org.secret
        )
    });
    format!(
        "POST /api/v1/emails/domains/generate HTTP/1.1\r\nHost: test\r\n{tokens}\
         Content-Type: application/json\r\nContent-Length: 16000\r\n\r\n"
    )
}

async fn app_with_a_short_body_timeout() -> TestApp {
    let options = Options {
        env: vec![("DOMAIN_API_BODY_TIMEOUT_MS".into(), "300".into())],
    };
    spawn_app_with(BackendKind::Sqlite, options).await
}

/// A connection that gives up waiting for the answer after 10 s: an answer within
/// that proves the bound exists (its value, 300 ms, is not what is measured here).
fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(app.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn assert_body_timeout(head: &str, body: &str) {
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert_eq!(body, "Request body timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_never_arrives_is_answered_408() {
    let app = app_with_a_short_body_timeout().await;
    let org = app.create_org("Acme");
    let forged = org.with_forged_access();

    for credentials in [Some(&org), Some(&forged), None] {
        let mut stream = connect(&app);
        stream
            .write_all(generate_head(credentials).as_bytes())
            .unwrap();

        let (head, body) = read_response(&mut stream);

        assert_body_timeout(&head, &body);
    }
    // A body that does arrive is read as before.
    assert_eq!(
        app.generate(&org, r#"{"email":"a@timeout.example"}"#)
            .status,
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_dripped_a_byte_at_a_time_hits_the_bound_on_the_whole_read() {
    let app = app_with_a_short_body_timeout().await;
    let org = app.create_org("Acme");

    for credentials in [Some(&org), None] {
        let mut stream = connect(&app);
        stream
            .write_all(generate_head(credentials).as_bytes())
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let dripping = Arc::clone(&stop);
        // A byte every 50 ms: each arrives well within 300 ms of the one before, so
        // only a bound on the whole read ends this.
        let dripper = std::thread::spawn(move || {
            for _ in 0..16_000 {
                if dripping.load(Ordering::Relaxed) || writer.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });

        let (head, body) = read_response(&mut stream);
        stop.store(true, Ordering::Relaxed);
        dripper.join().unwrap();

        assert_body_timeout(&head, &body);
    }
}
