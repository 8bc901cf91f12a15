//! [`HttpWebhookSender`]: the WebhookSender port. One request per delivery, to the
//! address the use case checked (never a second lookup of the host, so a DNS answer
//! that changes between the check and the connection cannot redirect it), TLS for
//! `https` with the URL's host as the server name and the platform's trust store,
//! `POST`, and read the status line. Redirects are not followed; the whole exchange is
//! bounded by the request's timeout.
//!
//! **Keep-alive.** A connection whose response ended cleanly (HTTP/1.1, no
//! `Connection: close`, a body of known length read whole, or none) is kept idle for
//! [`IDLE_FOR`] under the key (checked address, TLS server name): only a request to
//! that same checked address and name reuses it, so a host that resolves elsewhere
//! (checked again at every attempt) gets a new connection to the new address, or none
//! when that address is refused. A kept connection the server closed meanwhile is
//! replaced by a new one once, before anything was read from it.

mod fetch;

pub use fetch::HttpsGetter;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain_core::ports::webhooks::{SendOutcome, WebhookRequest, WebhookSender};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use rustls_platform_verifier::BuilderVerifierExt as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The most of a response read to find its status line and headers.
const MAX_HEAD: usize = 16 * 1024;

/// The largest response body read to keep its connection (a larger one is not read:
/// the connection is closed).
const MAX_KEPT_BODY: usize = 64 * 1024;

/// How long an idle connection is kept: less than the common servers' keep-alive
/// timeouts (Node's 5 s), so a kept connection is rarely found closed.
pub const IDLE_FOR: Duration = Duration::from_secs(4);

/// The most idle connections kept per address and name.
const MAX_IDLE_PER_KEY: usize = 16;

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Conn = Box<dyn Io>;

/// Which idle connections a request may reuse: those to the same checked address
/// with the same TLS server name (`None`: plain HTTP).
type PoolKey = (SocketAddr, Option<String>);

/// Idle connections by key, each with when it went idle.
type Pool = Mutex<HashMap<PoolKey, Vec<(Conn, Instant)>>>;

/// Sends webhook requests over HTTP/1.1.
#[derive(Clone)]
pub struct HttpWebhookSender {
    tls: TlsConnector,
    user_agent: String,
    idle: Arc<Pool>,
}

/// The TLS client could not be set up (the platform's trust store).
#[derive(Debug, thiserror::Error)]
#[error("the TLS client could not be set up: {0}")]
pub struct TlsSetupError(#[from] rustls::Error);

impl HttpWebhookSender {
    /// A sender identifying itself as `user_agent`.
    ///
    /// # Errors
    /// [`TlsSetupError`] when the platform's trust store cannot be used.
    pub fn new(user_agent: impl Into<String>) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_platform_verifier()?
            .with_no_client_auth();
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            user_agent: user_agent.into(),
            idle: Arc::default(),
        })
    }

    /// An idle connection for `key` that has not been idle too long.
    fn take_idle(&self, key: &PoolKey) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = idle.get_mut(key)?;
        let mut found = None;
        while let Some((conn, since)) = kept.pop() {
            if since.elapsed() < IDLE_FOR {
                found = Some(conn);
                break;
            }
        }
        if kept.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Keeps `conn` for `key`; drops whatever has been idle too long.
    fn keep_idle(&self, key: PoolKey, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|_, kept| {
            kept.retain(|(_, since)| since.elapsed() < IDLE_FOR);
            !kept.is_empty()
        });
        let kept = idle.entry(key).or_default();
        if kept.len() < MAX_IDLE_PER_KEY {
            kept.push((conn, Instant::now()));
        }
    }

    /// How many idle connections are kept (tests).
    #[doc(hidden)]
    pub fn idle_connections(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.values().map(Vec::len).sum()
    }

    fn head(&self, request: &WebhookRequest) -> String {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            request.url.request_target(),
            request.url.host_header(),
            self.user_agent,
            request.body.len(),
        );
        for (name, value) in &request.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head
    }

    async fn exchange(&self, request: &WebhookRequest) -> SendOutcome {
        let head = self.head(request);
        let key: PoolKey = (
            request.address,
            request
                .url
                .is_https()
                .then(|| request.url.host_str().to_owned()),
        );
        if let Some(conn) = self.take_idle(&key) {
            match post(conn, &head, &request.body).await {
                Reply::Answered(code, kept) => return self.answered(key, code, kept),
                Reply::Failed(reason) => return SendOutcome::Failed(reason),
                // Closed while idle: a new connection, once.
                Reply::Stale => {}
            }
        }
        let conn = match self.connect(request, &key).await {
            Ok(conn) => conn,
            Err(reason) => return SendOutcome::Failed(reason),
        };
        match post(conn, &head, &request.body).await {
            Reply::Answered(code, kept) => self.answered(key, code, kept),
            Reply::Failed(reason) => SendOutcome::Failed(reason),
            Reply::Stale => SendOutcome::Failed("no response"),
        }
    }

    fn answered(&self, key: PoolKey, code: u16, kept: Option<Conn>) -> SendOutcome {
        if let Some(conn) = kept {
            self.keep_idle(key, conn);
        }
        SendOutcome::Status(code)
    }

    async fn connect(&self, request: &WebhookRequest, key: &PoolKey) -> Result<Conn, &'static str> {
        let tcp = match TcpStream::connect(request.address).await {
            Ok(tcp) => tcp,
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                return Err("connection refused");
            }
            Err(error) => {
                tracing::debug!(%error, "webhook connection failed");
                return Err("connection failed");
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(name) = &key.1 else {
            return Ok(Box::new(tcp));
        };
        let Ok(name) = ServerName::try_from(name.clone()) else {
            return Err("tls");
        };
        match self.tls.connect(name, tcp).await {
            Ok(tls) => Ok(Box::new(tls)),
            Err(error) => {
                tracing::debug!(%error, "webhook TLS handshake failed");
                Err("tls")
            }
        }
    }
}

impl std::fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &WebhookRequest) -> SendOutcome {
        tokio::time::timeout(request.timeout, self.exchange(request))
            .await
            .unwrap_or(SendOutcome::Failed("timeout"))
    }
}

/// What one request on a connection came to.
enum Reply {
    /// A response with this status; the connection when it may be used again.
    Answered(u16, Option<Conn>),
    /// The connection was closed (or reset) before any byte of a response: on a
    /// kept connection, the server closed it while idle.
    Stale,
    /// No usable response.
    Failed(&'static str),
}

/// Writes the request and reads the response's head, and its body when that lets the
/// connection be kept.
async fn post(mut stream: Conn, head: &str, body: &str) -> Reply {
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.flush().await
    };
    if written.await.is_err() {
        return Reply::Stale;
    }
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(head_len)) => {
                let Some(code) = response.code else {
                    return Reply::Failed("bad response");
                };
                let body_len = kept_body_length(&response, code);
                let read = buffer.len() - head_len;
                let kept = match body_len {
                    Some(length) if read <= length => read_exactly(&mut stream, length - read)
                        .await
                        .then_some(stream),
                    _ => None,
                };
                return Reply::Answered(code, kept);
            }
            Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) | Err(_) => return Reply::Failed("bad response"),
        }
        match stream.read(&mut chunk).await {
            Ok(0) if buffer.is_empty() => return Reply::Stale,
            Ok(0) => return Reply::Failed("no response"),
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            Err(_) if buffer.is_empty() => return Reply::Stale,
            Err(_) => return Reply::Failed("connection reset"),
        }
    }
}

/// The length of the response's body when the connection may be kept after it: an
/// HTTP/1.1 final response without `Connection: close` whose body has no content (204,
/// 304) or a `Content-Length` of at most [`MAX_KEPT_BODY`]. `None`: close it.
fn kept_body_length(response: &httparse::Response<'_, '_>, code: u16) -> Option<usize> {
    if response.version != Some(1) {
        return None;
    }
    let mut length = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection")
            && header
                .value
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
        {
            return None;
        }
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            if length.is_some_and(|seen| seen != value) {
                return None;
            }
            length = Some(value);
        }
    }
    if code < 200 {
        // An interim response: the final one would follow on this connection.
        return None;
    }
    if code == 204 || code == 304 {
        return Some(0);
    }
    length.filter(|&length| length <= MAX_KEPT_BODY)
}

/// Reads and discards `remaining` bytes; whether they all came.
async fn read_exactly(stream: &mut Conn, mut remaining: usize) -> bool {
    let mut chunk = [0u8; 2048];
    while remaining > 0 {
        let want = remaining.min(chunk.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => remaining -= read,
        }
    }
    true
}
