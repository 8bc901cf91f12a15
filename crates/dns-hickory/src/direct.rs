//! Queries sent straight to one authoritative nameserver, without recursion: UDP
//! first (EDNS, 1232 octets), TCP when the answer comes back truncated. No resolver
//! and no cache stands between, so a record published a second ago is seen, and a
//! lagging secondary is seen lagging.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use domain_core::ports::dns::DnsError;
use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The UDP payload size advertised (the DNS Flag Day 2020 value).
const UDP_PAYLOAD: u16 = 1232;

/// Asks `server` for `record_type` at `name` (fully qualified), without recursion,
/// within `timeout` in all. Returns the authoritative answer.
///
/// # Errors
/// [`DnsError::NxDomain`], [`DnsError::ServFail`], [`DnsError::Timeout`], or
/// [`DnsError::Unexpected`] for any other code, a network error, a malformed or
/// mismatched answer, or an answer that is not authoritative.
pub(crate) async fn ask(
    server: SocketAddr,
    name: Name,
    record_type: RecordType,
    timeout: Duration,
) -> Result<Message, DnsError> {
    match tokio::time::timeout(timeout, exchange(server, name, record_type)).await {
        Ok(answer) => answer,
        Err(_elapsed) => Err(DnsError::Timeout),
    }
}

async fn exchange(
    server: SocketAddr,
    name: Name,
    record_type: RecordType,
) -> Result<Message, DnsError> {
    let mut query = Message::query();
    query.metadata.recursion_desired = false;
    query.add_query(Query::query(name, record_type));
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    query.set_edns(edns);
    let bytes = query.to_vec().map_err(unexpected)?;

    let answer = over_udp(server, &bytes, query.metadata.id).await?;
    let answer = if answer.metadata.truncation {
        over_tcp(server, &bytes, query.metadata.id).await?
    } else {
        answer
    };
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain if !answer.metadata.authoritative => Err(
            DnsError::Unexpected("the answer is not authoritative".into()),
        ),
        ResponseCode::NoError => Ok(answer),
        ResponseCode::NXDomain => Err(DnsError::NxDomain),
        ResponseCode::ServFail => Err(DnsError::ServFail),
        code => Err(DnsError::Unexpected(format!(
            "the nameserver answered {code}"
        ))),
    }
}

async fn over_udp(server: SocketAddr, query: &[u8], id: u16) -> Result<Message, DnsError> {
    let local: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0)).await.map_err(unexpected)?;
    socket.connect(server).await.map_err(unexpected)?;
    socket.send(query).await.map_err(unexpected)?;
    let mut buffer = vec![0u8; usize::from(u16::MAX)];
    loop {
        let len = socket.recv(&mut buffer).await.map_err(unexpected)?;
        // A stray datagram (not our answer) is ignored; the timeout bounds the wait.
        if let Ok(answer) = Message::from_vec(&buffer[..len])
            && matches(&answer, id)
        {
            return Ok(answer);
        }
    }
}

async fn over_tcp(server: SocketAddr, query: &[u8], id: u16) -> Result<Message, DnsError> {
    let mut stream = TcpStream::connect(server).await.map_err(unexpected)?;
    let len = u16::try_from(query.len()).map_err(unexpected)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(unexpected)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(unexpected)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.map_err(unexpected)?;
    let answer = Message::from_vec(&answer).map_err(unexpected)?;
    if matches(&answer, id) {
        Ok(answer)
    } else {
        Err(DnsError::Unexpected("a mismatched answer over TCP".into()))
    }
}

fn matches(answer: &Message, id: u16) -> bool {
    answer.metadata.id == id && answer.metadata.message_type == MessageType::Response
}

fn unexpected(error: impl std::fmt::Display) -> DnsError {
    DnsError::Unexpected(crate::errors::short(&error.to_string()))
}
