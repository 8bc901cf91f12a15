//! [`HttpWebhookSender`]: the WebhookSender port. One request per delivery: connect to
//! the address the use case checked (never a second lookup of the host, so a DNS
//! answer that changes between the check and the connection cannot redirect it),
//! TLS for `https` with the URL's host as the server name and the platform's trust
//! store, `POST` with `Connection: close`, and read the status line. Redirects are not
//! followed; the whole exchange is bounded by the request's timeout.

use std::io;
use std::sync::Arc;

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

/// Sends webhook requests over HTTP/1.1.
#[derive(Clone)]
pub struct HttpWebhookSender {
    tls: TlsConnector,
    user_agent: String,
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
        })
    }

    fn head(&self, request: &WebhookRequest) -> String {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
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
        let tcp = match TcpStream::connect(request.address).await {
            Ok(tcp) => tcp,
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                return SendOutcome::Failed("connection refused");
            }
            Err(error) => {
                tracing::debug!(%error, "webhook connection failed");
                return SendOutcome::Failed("connection failed");
            }
        };
        let _ = tcp.set_nodelay(true);
        let head = self.head(request);
        if !request.url.is_https() {
            return post(tcp, &head, &request.body).await;
        }
        let Ok(name) = ServerName::try_from(request.url.host_str().to_owned()) else {
            return SendOutcome::Failed("tls");
        };
        match self.tls.connect(name, tcp).await {
            Ok(tls) => post(tls, &head, &request.body).await,
            Err(error) => {
                tracing::debug!(%error, "webhook TLS handshake failed");
                SendOutcome::Failed("tls")
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

/// Writes the request and reads the response's head; the status code.
async fn post<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &str,
) -> SendOutcome {
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.flush().await
    };
    if written.await.is_err() {
        return SendOutcome::Failed("connection reset");
    }
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(_)) => {
                return match response.code {
                    Some(code) => SendOutcome::Status(code),
                    None => SendOutcome::Failed("bad response"),
                };
            }
            Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) | Err(_) => return SendOutcome::Failed("bad response"),
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return SendOutcome::Failed("no response"),
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            Err(_) => return SendOutcome::Failed("connection reset"),
        }
    }
}
