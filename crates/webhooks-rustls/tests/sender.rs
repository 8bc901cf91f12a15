//! The sender against a raw TCP server on 127.0.0.1.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::net::SocketAddr;
use std::time::Duration;

use domain_core::ports::webhooks::{SendOutcome, WebhookRequest, WebhookSender};
use domain_core::webhooks::{AddressPolicy, WebhookUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use webhooks_rustls::HttpWebhookSender;

fn policy() -> AddressPolicy {
    AddressPolicy {
        allow_http: true,
        allow_private: true,
        ..AddressPolicy::default()
    }
}

fn request(url: &str, address: SocketAddr, timeout: Duration) -> WebhookRequest {
    WebhookRequest {
        url: WebhookUrl::parse(url, &policy()).unwrap(),
        address,
        headers: vec![
            ("webhook-id", "7".into()),
            ("webhook-timestamp", "1".into()),
        ],
        body: r#"{"id":7}"#.into(),
        timeout,
    }
}

/// Accepts one connection, reads the request head and body, answers `reply`; the
/// request as received.
async fn one_shot(reply: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&received).contains(r#"{"id":7}"#) {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&chunk[..n]);
        }
        stream.write_all(reply.as_bytes()).await.unwrap();
        String::from_utf8(received).unwrap()
    });
    (addr, task)
}

fn sender() -> HttpWebhookSender {
    HttpWebhookSender::new("domain-api-test").unwrap()
}

#[tokio::test]
async fn posts_the_body_with_the_headers_to_the_given_address_and_reads_the_status() {
    let (addr, server) = one_shot("HTTP/1.1 204 No Content\r\n\r\n").await;
    // The URL names a host that does not resolve: the sender never looks it up.
    let url = format!("http://hooks.invalid-name.example:{}/in?x=1", addr.port());
    let outcome = sender()
        .send(&request(&url, addr, Duration::from_secs(5)))
        .await;
    assert_eq!(outcome, SendOutcome::Status(204));
    let received = server.await.unwrap();
    assert!(
        received.starts_with("POST /in?x=1 HTTP/1.1\r\n"),
        "{received}"
    );
    for line in [
        &format!("Host: hooks.invalid-name.example:{}\r\n", addr.port()),
        "Content-Type: application/json\r\n",
        "Content-Length: 8\r\n",
        "webhook-id: 7\r\n",
        "webhook-timestamp: 1\r\n",
        "User-Agent: domain-api-test\r\n",
    ] {
        assert!(received.contains(line), "{line:?} missing from {received}");
    }
}

#[tokio::test]
async fn a_redirect_is_reported_not_followed() {
    let (addr, server) =
        one_shot("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/\r\n\r\n").await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let outcome = sender()
        .send(&request(&url, addr, Duration::from_secs(5)))
        .await;
    assert_eq!(outcome, SendOutcome::Status(307));
    server.await.unwrap();
}

#[tokio::test]
async fn a_silent_server_is_a_timeout_and_a_closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let outcome = sender()
        .send(&request(&url, addr, Duration::from_millis(300)))
        .await;
    assert_eq!(outcome, SendOutcome::Failed("timeout"));
    drop(listener);
    let outcome = sender()
        .send(&request(&url, addr, Duration::from_secs(5)))
        .await;
    assert_eq!(outcome, SendOutcome::Failed("connection refused"));
}

#[tokio::test]
async fn garbage_or_a_closed_connection_is_not_a_status() {
    let (addr, server) = one_shot("SSH-2.0-OpenSSH\r\n\r\n").await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let outcome = sender()
        .send(&request(&url, addr, Duration::from_secs(5)))
        .await;
    assert_eq!(outcome, SendOutcome::Failed("bad response"));
    server.await.unwrap();
    let (addr, server) = one_shot("").await;
    let outcome = sender()
        .send(&request(&url, addr, Duration::from_secs(5)))
        .await;
    assert_eq!(outcome, SendOutcome::Failed("no response"));
    server.await.unwrap();
}

#[tokio::test]
async fn https_to_a_server_without_a_trusted_certificate_fails_the_handshake() {
    // A plain-text server where TLS is expected: the handshake fails, nothing is sent.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
    });
    let url = format!("https://hooks.example.com:{}/", addr.port());
    let outcome = sender()
        .send(&request(&url, addr, Duration::from_secs(5)))
        .await;
    assert_eq!(outcome, SendOutcome::Failed("tls"));
}

/// A server answering `reply` to every request on every connection, closing each
/// connection after `per_connection` requests; how many connections it accepted.
async fn keep_alive_server(
    reply: &'static str,
    per_connection: usize,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut received = Vec::new();
                let mut chunk = [0u8; 1024];
                for _ in 0..per_connection {
                    while !String::from_utf8_lossy(&received).contains(r#"{"id":7}"#) {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => received.extend_from_slice(&chunk[..n]),
                        }
                    }
                    received.clear();
                    stream.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_connection_is_kept_for_the_same_checked_address_only() {
    use std::sync::atomic::Ordering;
    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (addr, accepted) = keep_alive_server(reply, usize::MAX).await;
    let (other, other_accepted) = keep_alive_server(reply, usize::MAX).await;
    let sender = sender();
    let url = format!("http://hooks.example.com:{}/in", addr.port());
    for _ in 0..3 {
        let outcome = sender
            .send(&request(&url, addr, Duration::from_secs(5)))
            .await;
        assert_eq!(outcome, SendOutcome::Status(200));
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "three requests, one connection"
    );
    assert_eq!(sender.idle_connections(), 1);
    // The same URL checked to another address: never the kept connection.
    let outcome = sender
        .send(&request(&url, other, Duration::from_secs(5)))
        .await;
    assert_eq!(outcome, SendOutcome::Status(200));
    assert_eq!(other_accepted.load(Ordering::SeqCst), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_to_close_or_closed_while_idle_is_not_reused() {
    use std::sync::atomic::Ordering;
    // `Connection: close`, or a body of unknown length: a new connection each time.
    for reply in [
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    ] {
        let (addr, accepted) = keep_alive_server(reply, usize::MAX).await;
        let sender = sender();
        let url = format!("http://127.0.0.1:{}/", addr.port());
        for _ in 0..2 {
            let outcome = sender
                .send(&request(&url, addr, Duration::from_secs(5)))
                .await;
            assert_eq!(outcome, SendOutcome::Status(200), "{reply}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "{reply}");
        assert_eq!(sender.idle_connections(), 0, "{reply}");
    }
    // The server closes each connection after one answer, without saying so: the
    // next request finds the kept connection closed and goes on a new one.
    let (addr, accepted) = keep_alive_server("HTTP/1.1 204 No Content\r\n\r\n", 1).await;
    let sender = sender();
    let url = format!("http://127.0.0.1:{}/", addr.port());
    for _ in 0..3 {
        let outcome = sender
            .send(&request(&url, addr, Duration::from_secs(5)))
            .await;
        assert_eq!(outcome, SendOutcome::Status(204));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}
