//! Hostile input from outside, without credentials: nothing a client sends may
//! become a new metric series or an unbounded log line.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use store_diesel::BackendKind;

use crate::helpers::{TestApp, spawn_app};

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
