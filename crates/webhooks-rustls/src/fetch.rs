//! [`HttpsGetter`]: the HttpsFetcher port (Domain Connect's settings and
//! template-support answers). One `GET` per request over a new connection to the
//! address the use case checked, TLS with the URL's host as the server name and the
//! platform's trust store (plus, in tests, extra roots), HTTP/1.0 so the answer is
//! never chunked; the body is read to its `Content-Length` or the end, at most
//! `max_body` bytes, the whole exchange within the request's timeout.

use std::sync::Arc;

use async_trait::async_trait;
use domain_core::ports::domain_connect::{FetchOutcome, HttpsFetcher, HttpsGet};
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_platform_verifier::{BuilderVerifierExt as _, Verifier};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::TlsSetupError;

/// The most of a response's head read.
const MAX_HEAD: usize = 16 * 1024;

/// Makes HTTPS `GET`s.
#[derive(Clone)]
pub struct HttpsGetter {
    tls: TlsConnector,
    user_agent: String,
}

impl std::fmt::Debug for HttpsGetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsGetter")
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl HttpsGetter {
    /// A client identifying itself as `user_agent`, trusting the platform's roots and
    /// the certificates of `extra_roots_pem` (PEM, tests: a stand-in provider's CA).
    ///
    /// # Errors
    /// [`TlsSetupError`] when the trust store or an extra root cannot be used.
    pub fn new(
        user_agent: impl Into<String>,
        extra_roots_pem: Option<&[u8]>,
    ) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let config = match extra_roots_pem {
            None => builder.with_platform_verifier()?.with_no_client_auth(),
            Some(pem) => {
                let roots = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
                    })?;
                let verifier = Verifier::new_with_extra_roots(roots, provider)?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth()
            }
        };
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            user_agent: user_agent.into(),
        })
    }

    async fn exchange(&self, request: &HttpsGet) -> FetchOutcome {
        let head = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            request.url.request_target(),
            request.url.host_header(),
            self.user_agent,
        );
        let Ok(tcp) = TcpStream::connect(request.address).await else {
            return FetchOutcome::Failed("connection failed");
        };
        if !request.url.is_https() {
            return read_answer(tcp, &head, request.max_body).await;
        }
        let Ok(name) = ServerName::try_from(request.url.host_str().to_owned()) else {
            return FetchOutcome::Failed("tls");
        };
        match self.tls.connect(name, tcp).await {
            Ok(tls) => read_answer(tls, &head, request.max_body).await,
            Err(error) => {
                tracing::debug!(%error, "Domain Connect TLS handshake failed");
                FetchOutcome::Failed("tls")
            }
        }
    }
}

#[async_trait]
impl HttpsFetcher for HttpsGetter {
    async fn get(&self, request: &HttpsGet) -> FetchOutcome {
        tokio::time::timeout(request.timeout, self.exchange(request))
            .await
            .unwrap_or(FetchOutcome::Failed("timeout"))
    }
}

/// Writes `head`, reads the status and the body (to its length or the end).
async fn read_answer<S>(mut stream: S, head: &str, max_body: usize) -> FetchOutcome
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if stream.write_all(head.as_bytes()).await.is_err() || stream.flush().await.is_err() {
        return FetchOutcome::Failed("connection reset");
    }
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let limit = MAX_HEAD + max_body;
    let complete = loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break true,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            // A TLS peer that closes without close_notify: what came is kept.
            Err(_) if !buffer.is_empty() => break true,
            Err(_) => return FetchOutcome::Failed("connection reset"),
        }
        if buffer.len() > limit {
            break false;
        }
        // Whole before the end only by its Content-Length.
        if let Some((status, Some(body))) = parsed(&buffer, false)
            && body.len() <= max_body
        {
            return FetchOutcome::Answered { status, body };
        }
    };
    match parsed(&buffer, complete) {
        Some((status, Some(body))) if body.len() <= max_body => {
            FetchOutcome::Answered { status, body }
        }
        Some(_) => FetchOutcome::Failed("too large"),
        None => FetchOutcome::Failed("bad response"),
    }
}

/// The status and, once whole, the body (`Content-Length` bytes, or all that came
/// when the connection `ended`).
fn parsed(buffer: &[u8], ended: bool) -> Option<(u16, Option<Vec<u8>>)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(buffer).ok()? else {
        return None;
    };
    let status = response.code?;
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    let body = &buffer[head_len..];
    let whole = match length {
        Some(length) if body.len() >= length => Some(body[..length].to_vec()),
        Some(_) => None,
        None if ended => Some(body.to_vec()),
        None => None,
    };
    Some((status, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `read_answer` makes of `chunks` written by the server, then its close.
    async fn served(chunks: &'static [&'static [u8]], max_body: usize) -> FetchOutcome {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = server.read(&mut request).await;
            for chunk in chunks {
                server.write_all(chunk).await.unwrap();
                server.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        read_answer(client, "GET / HTTP/1.0\r\n\r\n", max_body).await
    }

    #[tokio::test]
    async fn a_body_without_a_length_is_read_to_the_end_and_a_long_one_refused() {
        let answer = served(&[b"HTTP/1.0 200 OK\r\n\r\n{\"a\":", b"1}"], 100).await;
        assert_eq!(
            answer,
            FetchOutcome::Answered {
                status: 200,
                body: b"{\"a\":1}".to_vec()
            }
        );
        let long = served(
            &[b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\n12345678"],
            4,
        )
        .await;
        assert_eq!(long, FetchOutcome::Failed("too large"));
    }

    #[test]
    fn a_body_is_whole_at_its_length_or_at_the_end() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parsed(answer, false), Some((200, Some(b"{}".to_vec()))));
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}";
        assert_eq!(parsed(partial, false), Some((200, None)));
        let unsized_body = b"HTTP/1.0 404 Not Found\r\n\r\nno";
        assert_eq!(parsed(unsized_body, false), Some((404, None)));
        assert_eq!(
            parsed(unsized_body, true),
            Some((404, Some(b"no".to_vec())))
        );
        assert_eq!(parsed(b"HTTP/1.1 20", true), None);
    }
}
