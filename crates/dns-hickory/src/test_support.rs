//! [`TestDnsServer`]: an authoritative DNS server on 127.0.0.1, UDP and TCP on one
//! port, answering real DNS packets from an in-memory table that tests change while it
//! runs. It speaks DNS through hickory-proto (as re-exported by hickory-resolver).
//!
//! Answers, for a query of type T at name N (case-insensitive):
//! - N marked [`TestDnsServer::set_blackhole`]: no answer at all, over UDP or TCP;
//! - N marked [`TestDnsServer::set_servfail`]: SERVFAIL;
//! - N has records of type T: NOERROR with them (MX, TXT, A, AAAA and SOA, TTL 0, in
//!   the order added);
//! - N has other records, or is an empty non-terminal (a name below it has records):
//!   NOERROR with an empty answer (NODATA);
//! - otherwise: NXDOMAIN.
//!
//! A zone marked [`TestDnsServer::sign_zone`] is signed (DNSSEC, Ed25519): a DNSKEY
//! RRset at its apex, and, to a query with the DO bit, an RRSIG over every non-empty
//! answer RRset in the zone, made at query time. Negative answers carry no NSEC, so a
//! validator judges them bogus; positive ones validate from the zone's key as a trust
//! anchor ([`ZoneKey::setting`]). [`TestDnsServer::forge_signatures`] signs with
//! another key instead, as an attacker without the zone's key would.
//!
//! NOERROR and NXDOMAIN answers carry the AA bit. A UDP answer larger than the client's
//! advertised payload size (512 octets without EDNS, at most 1232) is replaced by an
//! empty one with the TC bit, so that the client asks again over TCP, where answers are
//! never cut. Dropping the server stops it and closes its sockets.
//!
//! From another crate, enable the feature in `[dev-dependencies]`
//! (`dns-hickory = { workspace = true, features = ["test-support"] }`), then:
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//!
//! use dns_hickory::test_support::TestDnsServer;
//! use dns_hickory::{DnsConfig, HickoryDns};
//!
//! let server = TestDnsServer::start().await; // or `start_in_thread()` outside async code
//! server.add_mx("example.com", 10, "inbound.sendtrim.com.");
//! server.add_txt_value("s1._domainkey.example.com", "v=DKIM1; k=rsa; p=MIIBIjAN…");
//! let dns = HickoryDns::new(&DnsConfig::with_servers(
//!     vec![server.addr()],
//!     Duration::from_secs(2),
//! ))
//! .expect("the resolver builds");
//! # }
//! ```
//!
//! A binary under test takes `server.addr()` (e.g. `127.0.0.1:40123`) as its nameserver.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;

use hickory_resolver::proto::dnssec::crypto::Ed25519SigningKey;
use hickory_resolver::proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG, SigInput};
use hickory_resolver::proto::dnssec::{DnssecSigner, PublicKey, SigningKey, TBS};
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::rdata::{MX, SOA, TXT};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// The longest character-string a TXT record can hold (RFC 1035 §3.3).
pub const MAX_CHARACTER_STRING: usize = 255;

/// The largest UDP answer this server sends, whatever the client advertises
/// (the DNS Flag Day 2020 value).
const MAX_UDP_PAYLOAD: u16 = 1232;

/// How many ports to try for one that is free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 32;

/// `value` cut into character-strings of at most [`MAX_CHARACTER_STRING`] octets, the
/// way a long DKIM key is published. An empty value is one empty string.
#[must_use]
pub fn character_strings(value: &[u8]) -> Vec<&[u8]> {
    if value.is_empty() {
        return vec![value];
    }
    value.chunks(MAX_CHARACTER_STRING).collect()
}

/// An authoritative DNS server for tests; see the [module documentation](self).
pub struct TestDnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _running: Running,
}

/// What serves the sockets; dropping it stops the server.
enum Running {
    /// Tasks on the runtime that called [`TestDnsServer::start`].
    Tasks(Vec<JoinHandle<()>>),
    /// A thread of its own, from [`TestDnsServer::start_in_thread`].
    Thread {
        stop: Option<oneshot::Sender<()>>,
        thread: Option<thread::JoinHandle<()>>,
    },
}

impl std::fmt::Debug for TestDnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        match self {
            // Aborting the TCP task drops its `JoinSet`, which aborts every connection.
            Self::Tasks(tasks) => tasks.iter().for_each(JoinHandle::abort),
            Self::Thread { stop, thread } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                // The thread drops its runtime, and with it every task and socket.
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

impl TestDnsServer {
    /// Binds 127.0.0.1 on a free port, UDP and TCP alike, and starts serving on the
    /// current Tokio runtime. That runtime must keep running while the server is
    /// queried: a test that blocks its thread (a blocking HTTP client on a
    /// current-thread runtime, say) should use [`TestDnsServer::start_in_thread`].
    ///
    /// # Panics
    /// When no port can be bound; see [`TestDnsServer::try_start`].
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(server) => server,
            Err(e) => panic!("the test DNS server could not bind 127.0.0.1: {e}"),
        }
    }

    /// Like [`TestDnsServer::start`], returning the bind error instead of panicking.
    ///
    /// # Errors
    /// The last bind error when no port was free for both UDP and TCP.
    pub async fn try_start() -> io::Result<Self> {
        let (udp, tcp) = bind_pair().await?;
        let addr = udp.local_addr()?;
        let shared = Arc::new(Shared::default());
        let tasks = vec![
            tokio::spawn(serve_udp(udp, Arc::clone(&shared))),
            tokio::spawn(serve_tcp(tcp, Arc::clone(&shared))),
        ];
        tracing::debug!(%addr, "test DNS server started");
        Ok(Self {
            addr,
            shared,
            _running: Running::Tasks(tasks),
        })
    }

    /// Like [`TestDnsServer::start`], but served by a thread of its own with its own
    /// runtime, so it answers whatever the caller does: for synchronous tests and for
    /// tests that block. May be called inside or outside a Tokio runtime.
    ///
    /// # Panics
    /// When no port can be bound; see [`TestDnsServer::try_start_in_thread`].
    #[must_use]
    pub fn start_in_thread() -> Self {
        match Self::try_start_in_thread() {
            Ok(server) => server,
            Err(e) => panic!("the test DNS server could not start: {e}"),
        }
    }

    /// Like [`TestDnsServer::start_in_thread`], returning the error instead of
    /// panicking.
    ///
    /// # Errors
    /// When the thread or its runtime cannot be created, or no port can be bound.
    pub fn try_start_in_thread() -> io::Result<Self> {
        Self::try_start_in_thread_at(None)
    }

    /// Servers on each of `ips` (loopback addresses such as 127.0.0.2, 127.0.0.3),
    /// all on one port, each on a thread of its own: the authoritative nameservers of
    /// a zone, whose NS addresses carry no port (the service under test is told the
    /// port). Their tables are separate, so one can lag behind the others.
    ///
    /// # Panics
    /// When no port is free on every address.
    #[must_use]
    pub fn start_in_thread_on_each(ips: &[std::net::IpAddr]) -> Vec<Self> {
        for _ in 0..BIND_ATTEMPTS {
            let Some((first, rest)) = ips.split_first() else {
                return Vec::new();
            };
            let Ok(server) = Self::try_start_in_thread_at(Some(SocketAddr::new(*first, 0))) else {
                continue;
            };
            let port = server.addr().port();
            let others: io::Result<Vec<Self>> = rest
                .iter()
                .map(|ip| Self::try_start_in_thread_at(Some(SocketAddr::new(*ip, port))))
                .collect();
            if let Ok(others) = others {
                let mut all = vec![server];
                all.extend(others);
                return all;
            }
        }
        panic!("no port is free on every one of {ips:?}");
    }

    fn try_start_in_thread_at(at: Option<SocketAddr>) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let serving = Arc::clone(&shared);
        let (ready, bound) = mpsc::channel::<io::Result<SocketAddr>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("test-dns-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let bound = match at {
                        None => bind_pair().await,
                        Some(addr) => bind_pair_at(addr).await,
                    };
                    let (udp, tcp) = match bound {
                        Ok(pair) => pair,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready.send(udp.local_addr());
                    tokio::spawn(serve_udp(udp, Arc::clone(&serving)));
                    tokio::spawn(serve_tcp(tcp, serving));
                    // A dropped sender stops the server as well.
                    let _ = stopped.await;
                });
            })?;
        let running = Running::Thread {
            stop: Some(stop),
            thread: Some(thread),
        };
        let addr = bound
            .recv()
            .map_err(|_| io::Error::other("the test DNS server thread ended early"))??;
        tracing::debug!(%addr, "test DNS server started on its own thread");
        Ok(Self {
            addr,
            shared,
            _running: running,
        })
    }

    /// The address to query, the same for UDP and TCP.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds an MX record at `name`; `exchange` is published as given, made absolute
    /// (`mx.example.com` goes out as `mx.example.com.`).
    ///
    /// # Panics
    /// When `name` or `exchange` is not a valid domain name.
    pub fn add_mx(&self, name: &str, preference: u16, exchange: &str) {
        let mut exchange = parse_name(exchange);
        exchange.set_fqdn(true);
        self.shared
            .entry(name, |entry| entry.mx.push((preference, exchange)));
    }

    /// Adds one TXT record at `name`, each of `strings` one character-string.
    ///
    /// # Panics
    /// When `name` is not a valid domain name or a string is longer than
    /// [`MAX_CHARACTER_STRING`] octets (use [`TestDnsServer::add_txt_value`] then).
    pub fn add_txt(&self, name: &str, strings: &[&str]) {
        let strings: Vec<&[u8]> = strings.iter().map(|s| s.as_bytes()).collect();
        self.add_txt_bytes(name, &strings);
    }

    /// Adds one TXT record at `name` whose character-strings are raw octets, e.g. to
    /// publish invalid UTF-8.
    ///
    /// # Panics
    /// As [`TestDnsServer::add_txt`].
    pub fn add_txt_bytes(&self, name: &str, strings: &[&[u8]]) {
        for s in strings {
            assert!(
                s.len() <= MAX_CHARACTER_STRING,
                "a TXT character-string holds at most {MAX_CHARACTER_STRING} octets, not {}",
                s.len()
            );
        }
        let record: Vec<Vec<u8>> = if strings.is_empty() {
            vec![Vec::new()]
        } else {
            strings.iter().map(|s| s.to_vec()).collect()
        };
        self.shared.entry(name, |entry| entry.txt.push(record));
    }

    /// Adds one TXT record at `name` holding `value` cut into character-strings of at
    /// most [`MAX_CHARACTER_STRING`] octets (see [`character_strings`]).
    ///
    /// # Panics
    /// When `name` is not a valid domain name.
    pub fn add_txt_value(&self, name: &str, value: &str) {
        self.add_txt_bytes(name, &character_strings(value.as_bytes()));
    }

    /// Adds an A or AAAA record (by the address's family) at `name`.
    ///
    /// # Panics
    /// When `name` is not a valid domain name.
    pub fn add_address(&self, name: &str, address: std::net::IpAddr) {
        self.shared
            .entry(name, |entry| entry.addresses.push(address));
    }

    /// Makes `name` a zone apex: an SOA record there (`ns1.<name>.`,
    /// `hostmaster.<name>.`, serial 1).
    ///
    /// # Panics
    /// When `name` is not a valid domain name.
    pub fn add_soa(&self, name: &str) {
        let mut apex = parse_name(name);
        apex.set_fqdn(true);
        let under = |label: &str| {
            Name::from_ascii(label)
                .and_then(|l| l.append_domain(&apex))
                .unwrap_or_else(|e| panic!("{name:?} cannot hold {label}: {e}"))
        };
        let soa = SOA::new(under("ns1"), under("hostmaster"), 1, 3600, 600, 86400, 0);
        self.shared.entry(name, |entry| entry.soa = Some(soa));
    }

    /// Adds an NS record at `zone` naming `host` (made absolute).
    ///
    /// # Panics
    /// When `zone` or `host` is not a valid domain name.
    pub fn add_ns(&self, zone: &str, host: &str) {
        let mut host = parse_name(host);
        host.set_fqdn(true);
        self.shared.entry(zone, |entry| entry.ns.push(host));
    }

    /// Signs `zone` (see the [module documentation](self)) with a new Ed25519 key:
    /// publishes its DNSKEY at the apex and returns the key, to be given to the
    /// validator as a trust anchor.
    ///
    /// # Panics
    /// When `zone` is not a valid domain name or the key cannot be made.
    #[must_use]
    pub fn sign_zone(&self, zone: &str) -> ZoneKey {
        let mut apex = parse_name(zone);
        apex.set_fqdn(true);
        let signing = new_key();
        let public = signing
            .to_public_key()
            .unwrap_or_else(|e| panic!("no public key: {e}"));
        let dnskey = DNSKEY::new(true, true, false, public.clone());
        let signer = DnssecSigner::new(
            dnskey.clone(),
            Box::new(signing),
            apex.clone(),
            std::time::Duration::from_secs(3600),
        );
        let forger = DnssecSigner::new(
            dnskey.clone(),
            Box::new(new_key()),
            apex.clone(),
            std::time::Duration::from_secs(3600),
        );
        self.shared.entry(zone, |entry| entry.dnskey.push(dnskey));
        self.shared.signers().insert(
            key(&apex),
            Arc::new(ZoneSigning {
                signer,
                forger,
                forged: AtomicBool::new(false),
            }),
        );
        ZoneKey {
            zone: apex.to_ascii().trim_end_matches('.').to_owned(),
            algorithm: u8::from(public.algorithm()),
            public_key: public.public_bytes().to_vec(),
        }
    }

    /// `forged`: from now on the answers in `zone` (signed by
    /// [`TestDnsServer::sign_zone`]) carry signatures made with another key under the
    /// zone key's tag, what a forger without the zone's key can send, which a
    /// validator finds bogus; `false`: signed with the zone's key again.
    ///
    /// # Panics
    /// When `zone` was not signed.
    pub fn forge_signatures(&self, zone: &str, forged: bool) {
        let mut apex = parse_name(zone);
        apex.set_fqdn(true);
        let signers = self.shared.signers();
        let Some(signing) = signers.get(&key(&apex)) else {
            panic!("{zone} is not signed");
        };
        signing.forged.store(forged, Ordering::Relaxed);
    }

    /// Answers every query at `name` with SERVFAIL until [`TestDnsServer::clear`].
    ///
    /// # Panics
    /// When `name` is not a valid domain name.
    pub fn set_servfail(&self, name: &str) {
        self.shared
            .entry(name, |entry| entry.behaviour = Behaviour::ServFail);
    }

    /// Receives every query at `name` and never answers, until
    /// [`TestDnsServer::clear`].
    ///
    /// # Panics
    /// When `name` is not a valid domain name.
    pub fn set_blackhole(&self, name: &str) {
        self.shared
            .entry(name, |entry| entry.behaviour = Behaviour::Blackhole);
    }

    /// Forgets everything about `name`: its records, SERVFAIL and blackhole marks.
    ///
    /// # Panics
    /// When `name` is not a valid domain name.
    pub fn clear(&self, name: &str) {
        let key = key(&parse_name(name));
        self.shared.names().remove(&key);
    }

    /// How many queries arrived over UDP so far.
    #[must_use]
    pub fn udp_queries(&self) -> usize {
        self.shared.udp_queries.load(Ordering::Relaxed)
    }

    /// How many queries arrived over TCP so far.
    #[must_use]
    pub fn tcp_queries(&self) -> usize {
        self.shared.tcp_queries.load(Ordering::Relaxed)
    }
}

/// A signed zone's public key, for a validator's trust anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneKey {
    /// The zone, e.g. `claimed.example`.
    pub zone: String,
    /// The DNSSEC algorithm number (15, Ed25519).
    pub algorithm: u8,
    /// The public key as a DNSKEY carries it.
    pub public_key: Vec<u8>,
}

impl ZoneKey {
    /// `<zone> <algorithm> <public key in hex>`: the value of the service's
    /// `DOMAIN_API_TEST_DNSSEC_TRUST_ANCHOR`.
    #[must_use]
    pub fn setting(&self) -> String {
        let hex: String = self
            .public_key
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{} {} {hex}", self.zone, self.algorithm)
    }
}

/// A signed zone's signer, and the forger that signs in its name without its key.
struct ZoneSigning {
    signer: DnssecSigner,
    forger: DnssecSigner,
    forged: AtomicBool,
}

impl ZoneSigning {
    fn current(&self) -> &DnssecSigner {
        if self.forged.load(Ordering::Relaxed) {
            &self.forger
        } else {
            &self.signer
        }
    }
}

fn new_key() -> Ed25519SigningKey {
    Ed25519SigningKey::generate_pkcs8()
        .and_then(|pkcs8| Ed25519SigningKey::from_pkcs8(&pkcs8))
        .unwrap_or_else(|e| panic!("no Ed25519 key: {e}"))
}

/// The table and the counters, shared by the handle and the serving tasks.
#[derive(Default)]
struct Shared {
    /// Keyed by the lower-cased absolute name, e.g. `example.com.`.
    names: Mutex<HashMap<String, Entry>>,
    /// Signed zones, keyed like `names`.
    signers: Mutex<HashMap<String, Arc<ZoneSigning>>>,
    udp_queries: AtomicUsize,
    tcp_queries: AtomicUsize,
}

#[derive(Default)]
struct Entry {
    behaviour: Behaviour,
    mx: Vec<(u16, Name)>,
    txt: Vec<Vec<Vec<u8>>>,
    addresses: Vec<std::net::IpAddr>,
    soa: Option<SOA>,
    ns: Vec<Name>,
    dnskey: Vec<DNSKEY>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    #[default]
    Answer,
    ServFail,
    Blackhole,
}

/// What the table says about one query.
enum Outcome {
    Silence,
    Code(ResponseCode),
    Records(Vec<Record>),
}

impl Shared {
    fn names(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panicking test thread must not take the server down with it.
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn signers(&self) -> MutexGuard<'_, HashMap<String, Arc<ZoneSigning>>> {
        self.signers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The signer of the nearest signed zone enclosing `name`.
    fn signer_for(&self, name: &Name) -> Option<Arc<ZoneSigning>> {
        let signers = self.signers();
        let mut at = name.to_lowercase();
        at.set_fqdn(true);
        loop {
            if let Some(signer) = signers.get(&at.to_ascii()) {
                return Some(Arc::clone(signer));
            }
            if at.is_root() {
                return None;
            }
            at = at.base_name();
        }
    }

    fn entry(&self, name: &str, change: impl FnOnce(&mut Entry)) {
        let key = key(&parse_name(name));
        change(self.names().entry(key).or_default());
    }

    fn outcome(&self, query: &Query) -> Outcome {
        let qname = query.name();
        let key = key(qname);
        let names = self.names();
        let Some(entry) = names.get(&key) else {
            let below = format!(".{key}");
            return if names.keys().any(|name| name.ends_with(&below)) {
                Outcome::Records(Vec::new())
            } else {
                Outcome::Code(ResponseCode::NXDomain)
            };
        };
        let records = match (entry.behaviour, query.query_type()) {
            (Behaviour::Blackhole, _) => return Outcome::Silence,
            (Behaviour::ServFail, _) => return Outcome::Code(ResponseCode::ServFail),
            (Behaviour::Answer, RecordType::MX) => entry
                .mx
                .iter()
                .map(|(preference, exchange)| RData::MX(MX::new(*preference, exchange.clone())))
                .collect(),
            (Behaviour::Answer, RecordType::TXT) => entry
                .txt
                .iter()
                .map(|strings| {
                    RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
                })
                .collect(),
            (Behaviour::Answer, RecordType::A) => entry
                .addresses
                .iter()
                .filter_map(|address| match address {
                    std::net::IpAddr::V4(v4) => Some(RData::A((*v4).into())),
                    std::net::IpAddr::V6(_) => None,
                })
                .collect(),
            (Behaviour::Answer, RecordType::AAAA) => entry
                .addresses
                .iter()
                .filter_map(|address| match address {
                    std::net::IpAddr::V6(v6) => Some(RData::AAAA((*v6).into())),
                    std::net::IpAddr::V4(_) => None,
                })
                .collect(),
            (Behaviour::Answer, RecordType::NS) => entry
                .ns
                .iter()
                .map(|host| RData::NS(hickory_resolver::proto::rr::rdata::NS(host.clone())))
                .collect(),
            (Behaviour::Answer, RecordType::SOA) => {
                entry.soa.iter().cloned().map(RData::SOA).collect()
            }
            (Behaviour::Answer, RecordType::DNSKEY) => entry
                .dnskey
                .iter()
                .map(|key| RData::DNSSEC(DNSSECRData::DNSKEY(key.clone())))
                .collect(),
            (Behaviour::Answer, _) => Vec::new(),
        };
        // The owner name echoes the query's spelling, as authoritative servers do.
        Outcome::Records(
            records
                .into_iter()
                .map(|data| Record::from_rdata(qname.clone(), 0, data))
                .collect(),
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// The wire answer to the wire query `request`, or `None` to stay silent (unparsable
/// queries, responses, blackholed names).
fn respond(shared: &Shared, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let request = Message::from_vec(request).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.queries.clone_from(&request.queries);
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        response.set_edns(edns);
    }
    let outcome = match request.queries.as_slice() {
        _ if request.metadata.op_code != OpCode::Query => Outcome::Code(ResponseCode::NotImp),
        [query] if query.query_class() == DNSClass::IN => shared.outcome(query),
        [_] => Outcome::Code(ResponseCode::Refused),
        _ => Outcome::Code(ResponseCode::FormErr),
    };
    match outcome {
        Outcome::Silence => return None,
        Outcome::Code(code) => {
            response.metadata.response_code = code;
            response.metadata.authoritative = code == ResponseCode::NXDomain;
        }
        Outcome::Records(mut records) => {
            response.metadata.authoritative = true;
            let dnssec_ok = request
                .edns
                .as_ref()
                .is_some_and(|edns| edns.flags().dnssec_ok);
            if dnssec_ok
                && let ([query], false) = (request.queries.as_slice(), records.is_empty())
                && let Some(signer) = shared.signer_for(query.name())
                && let Some(rrsig) = rrsig(signer.current(), query, &records)
            {
                records.push(rrsig);
            }
            response.answers = records;
        }
    }
    let bytes = response.to_vec().ok()?;
    let limit = usize::from(request.max_payload().min(MAX_UDP_PAYLOAD));
    if transport == Transport::Udp && bytes.len() > limit {
        response.answers.clear();
        response.metadata.truncation = true;
        return response.to_vec().ok();
    }
    Some(bytes)
}

/// The RRSIG over `records` (the answer RRset to `query`), valid from a minute ago
/// for an hour.
fn rrsig(signer: &DnssecSigner, query: &Query, records: &[Record]) -> Option<Record> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let now = u32::try_from(now).ok()?;
    let input = SigInput {
        type_covered: query.query_type(),
        algorithm: signer.key().algorithm(),
        num_labels: query.name().num_labels(),
        original_ttl: 0,
        sig_expiration: SerialNumber::new(now.wrapping_add(3600)),
        sig_inception: SerialNumber::new(now.wrapping_sub(60)),
        key_tag: signer.calculate_key_tag().ok()?,
        signer_name: signer.signer_name().clone(),
    };
    let tbs = TBS::from_input(query.name(), DNSClass::IN, &input, records.iter()).ok()?;
    let sig = signer.sign(&tbs).ok()?;
    Some(Record::from_rdata(
        query.name().clone(),
        0,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
    ))
}

/// A UDP socket and a TCP listener on `addr`; with port 0, on one port free for both.
async fn bind_pair_at(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "no port tried");
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_error = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_error)
}

/// A UDP socket and a TCP listener on the same 127.0.0.1 port.
async fn bind_pair() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "no port tried");
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buffer = vec![0u8; usize::from(u16::MAX)];
    loop {
        let (len, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            // E.g. an ICMP "port unreachable" left by an earlier answer: keep serving.
            Err(error) => {
                tracing::debug!(%error, "test DNS server: UDP receive failed");
                continue;
            }
        };
        shared.udp_queries.fetch_add(1, Ordering::Relaxed);
        let Some(answer) = respond(&shared, &buffer[..len], Transport::Udp) else {
            continue;
        };
        if let Err(error) = socket.send_to(&answer, peer).await {
            tracing::debug!(%error, %peer, "test DNS server: UDP send failed");
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                connections.spawn(serve_tcp_connection(stream, Arc::clone(&shared)));
            }
            Err(error) => tracing::debug!(%error, "test DNS server: TCP accept failed"),
        }
        while connections.try_join_next().is_some() {}
    }
}

/// Serves length-prefixed queries (RFC 1035 §4.2.2) until the client closes.
async fn serve_tcp_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        shared.tcp_queries.fetch_add(1, Ordering::Relaxed);
        let Some(answer) = respond(&shared, &request, Transport::Tcp) else {
            continue;
        };
        let Ok(answer_len) = u16::try_from(answer.len()) else {
            tracing::debug!(
                len = answer.len(),
                "test DNS server: answer too large for TCP"
            );
            continue;
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&answer_len.to_be_bytes());
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// Parses a name as tests write it: ASCII or Unicode, with or without the final dot.
fn parse_name(name: &str) -> Name {
    let parsed = if name.is_ascii() {
        Name::from_ascii(name)
    } else {
        Name::from_utf8(name)
    };
    match parsed {
        Ok(parsed) => parsed,
        Err(e) => panic!("{name:?} is not a valid domain name: {e}"),
    }
}

/// The table key of `name`: lower-cased and absolute.
fn key(name: &Name) -> String {
    let mut name = name.to_lowercase();
    name.set_fqdn(true);
    name.to_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, record_type: RecordType) -> Vec<u8> {
        let mut message = Message::query();
        message.add_query(Query::query(parse_name(name), record_type));
        message.to_vec().unwrap()
    }

    fn answer(shared: &Shared, request: &[u8], transport: Transport) -> Message {
        Message::from_vec(&respond(shared, request, transport).unwrap()).unwrap()
    }

    #[test]
    fn character_strings_are_cut_at_255_octets() {
        let value = vec![b'k'; 600];
        let strings = character_strings(&value);
        assert_eq!(
            strings.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        assert_eq!(character_strings(b""), [b"".as_slice()]);
    }

    #[test]
    fn negative_answers_are_authoritative() {
        let shared = Shared::default();
        shared.entry("s1._domainkey.example.com", |e| {
            e.txt.push(vec![b"v=DKIM1".to_vec()]);
        });

        let nx = answer(
            &shared,
            &query("nope.example.com.", RecordType::MX),
            Transport::Udp,
        );
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
        assert!(nx.metadata.authoritative);

        let nodata = answer(
            &shared,
            &query("S1._domainkey.example.com.", RecordType::MX),
            Transport::Udp,
        );
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.metadata.authoritative && nodata.answers.is_empty());

        // An empty non-terminal exists: NODATA, not NXDOMAIN.
        let ent = answer(
            &shared,
            &query("example.com.", RecordType::TXT),
            Transport::Udp,
        );
        assert_eq!(ent.metadata.response_code, ResponseCode::NoError);
        assert!(ent.answers.is_empty());
    }

    #[test]
    fn large_udp_answers_are_truncated_but_not_over_tcp() {
        let shared = Shared::default();
        let value = "p".repeat(2000);
        shared.entry("big.example.com", |e| {
            e.txt.push(
                character_strings(value.as_bytes())
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
            );
        });
        let request = query("big.example.com.", RecordType::TXT);

        let udp = answer(&shared, &request, Transport::Udp);
        assert!(udp.metadata.truncation && udp.answers.is_empty());

        let tcp = answer(&shared, &request, Transport::Tcp);
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 1);
    }

    #[test]
    fn responses_are_ignored() {
        let shared = Shared::default();
        let mut message = Message::query();
        message.metadata.message_type = MessageType::Response;
        assert!(respond(&shared, &message.to_vec().unwrap(), Transport::Udp).is_none());
        assert!(respond(&shared, b"garbage", Transport::Udp).is_none());
    }
}
