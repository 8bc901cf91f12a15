//! A TCP proxy on 127.0.0.1 that a test puts between the service and its database, to
//! break the link on command (DESIGN.md, "Shared resources", rule 5): reset every
//! connection, cut the link (closed and refused until restored), or stall it — the
//! sockets stay open and the kernel still ACKs, but no byte moves — which is what a
//! database that stopped answering looks like from the service's side.
//!
//! The proxy runs on its own thread with a one-thread tokio runtime; its controls are
//! plain blocking calls for synchronous test code. It stops when dropped.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// How long a control waits for the connections it ends to be gone.
const SETTLE: Duration = Duration::from_secs(5);

/// The faults in force.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    /// Bumped by `reset()` and `cut()`: a connection accepted under an older
    /// generation is reset.
    generation: u64,
    /// New connections are reset as soon as they are accepted.
    cut: bool,
    /// No byte is forwarded, in either direction.
    stalled: bool,
}

#[derive(Debug)]
struct Shared {
    faults: watch::Sender<Faults>,
    /// Live connections by the generation they were accepted under.
    live: Mutex<BTreeMap<u64, usize>>,
}

impl Shared {
    fn live(&self) -> MutexGuard<'_, BTreeMap<u64, usize>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running proxy: connections to [`FaultProxy::addr`] are forwarded to the target
/// until a fault says otherwise.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a port the kernel picks) and forwards to `target`.
    ///
    /// # Panics
    /// When the port cannot be bound or the proxy's thread cannot start.
    pub fn start(target: SocketAddr) -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let (faults, _) = watch::channel(Faults::default());
        let shared = Arc::new(Shared {
            faults,
            live: Mutex::new(BTreeMap::new()),
        });
        let (shutdown, stop) = oneshot::channel();
        let runner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("a tokio listener");
                    tokio::select! {
                        () = accept(listener, target, runner) => {}
                        _ = stop => {}
                    }
                });
                // Dropping the runtime drops every connection task, and with it
                // every socket.
            })
            .expect("start the proxy thread");
        Self {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resets every open connection, on both sides (`SO_LINGER` 0, then close: the
    /// peers get RST); returns once they are gone. Later connections are forwarded
    /// as before.
    ///
    /// # Panics
    /// When the connections are not gone within 5 s.
    pub fn reset(&self) {
        let generation = self.next_generation(|_| {});
        self.wait_older_than(generation);
    }

    /// Resets every open connection and resets each new one as soon as it is
    /// accepted, until [`FaultProxy::restore`]; returns once the open ones are gone.
    ///
    /// # Panics
    /// When the connections are not gone within 5 s.
    pub fn cut(&self) {
        let generation = self.next_generation(|f| f.cut = true);
        self.wait_older_than(generation);
    }

    /// Ends a [`FaultProxy::cut`]: new connections are forwarded again.
    pub fn restore(&self) {
        self.shared.faults.send_modify(|f| f.cut = false);
    }

    /// Stops forwarding bytes in both directions; every socket stays open and new
    /// connections are still accepted (and connected to the target), but nothing
    /// passes until [`FaultProxy::thaw`]. Bytes read before are held.
    pub fn stall(&self) {
        self.shared.faults.send_modify(|f| f.stalled = true);
    }

    /// Ends a [`FaultProxy::stall`]: the held bytes are delivered, then the rest.
    pub fn thaw(&self) {
        self.shared.faults.send_modify(|f| f.stalled = false);
    }

    /// How many client connections are open through the proxy.
    pub fn connections(&self) -> usize {
        self.shared.live().values().sum()
    }

    /// Starts a new generation with `change` applied; the lock on the live set makes
    /// it atomic with respect to connections being accepted.
    fn next_generation(&self, change: impl FnOnce(&mut Faults)) -> u64 {
        let _live = self.shared.live();
        let mut generation = 0;
        self.shared.faults.send_modify(|f| {
            f.generation += 1;
            change(f);
            generation = f.generation;
        });
        generation
    }

    fn wait_older_than(&self, generation: u64) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let older: usize = self.shared.live().range(..generation).map(|(_, n)| n).sum();
            if older == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "fault proxy: {older} connection(s) still open {SETTLE:?} after being reset"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection in the live set while it exists.
struct Live {
    shared: Arc<Shared>,
    generation: u64,
}

impl Live {
    fn enter(shared: &Arc<Shared>) -> Self {
        let mut live = shared.live();
        let generation = shared.faults.borrow().generation;
        *live.entry(generation).or_default() += 1;
        Self {
            shared: Arc::clone(shared),
            generation,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = self.shared.live();
        if let Some(count) = live.get_mut(&self.generation) {
            *count -= 1;
            if *count == 0 {
                live.remove(&self.generation);
            }
        }
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let live = Live::enter(&shared);
                tokio::spawn(serve(client, target, shared.faults.subscribe(), live));
            }
            // Out of file descriptors, say: try again shortly rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve(
    mut client: TcpStream,
    target: SocketAddr,
    mut faults: watch::Receiver<Faults>,
    live: Live,
) {
    let born = live.generation;
    let doomed = move |f: &Faults| f.cut || f.generation != born;
    if doomed(&faults.borrow()) {
        abort(client);
        return;
    }
    let connected = tokio::select! {
        connected = TcpStream::connect(target) => connected,
        () = until(&mut faults, doomed) => {
            abort(client);
            return;
        }
    };
    let Ok(mut upstream) = connected else {
        abort(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let killed = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let (up, down) = (faults.clone(), faults.clone());
        let both = async move {
            tokio::join!(
                pump(client_read, upstream_write, up),
                pump(upstream_read, client_write, down),
            )
        };
        tokio::select! {
            _ = both => false,
            () = until(&mut faults, doomed) => true,
        }
    };
    if killed {
        abort(client);
        abort(upstream);
    }
    drop(live);
}

/// Copies `from` to `to` while the link is not stalled; at the end of `from`, shuts
/// `to` down for writing (once the link flows).
async fn pump(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>, mut faults: watch::Receiver<Faults>) {
    let flowing = |f: &Faults| !f.stalled;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        until(&mut faults, flowing).await;
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just before a stall are held until it ends.
        until(&mut faults, flowing).await;
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    until(&mut faults, flowing).await;
    let _ = to.shutdown().await;
}

/// Returns once `condition` holds (at once if it holds now). If the proxy is gone it
/// never returns: its runtime is being dropped with the task.
async fn until(faults: &mut watch::Receiver<Faults>, condition: impl Fn(&Faults) -> bool) {
    if faults.wait_for(|f| condition(f)).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Closes `stream` with RST instead of FIN.
fn abort(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read as _, Write as _};
    use std::net::{Shutdown, TcpListener, TcpStream};

    use super::*;

    /// An echo server on 127.0.0.1, one thread per connection, for as long as the
    /// test runs.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n @ 1..) = stream.read(&mut buffer) {
                        if stream.write_all(&buffer[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn client(proxy: &FaultProxy) -> TcpStream {
        let stream = TcpStream::connect(proxy.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        stream
    }

    /// Sends `text` and reads back as many bytes.
    fn echo(stream: &mut TcpStream, text: &str) -> std::io::Result<String> {
        stream.write_all(text.as_bytes())?;
        read(stream, text.len())
    }

    fn read(stream: &mut TcpStream, len: usize) -> std::io::Result<String> {
        let mut buffer = vec![0u8; len];
        stream.read_exact(&mut buffer)?;
        Ok(String::from_utf8(buffer).unwrap())
    }

    fn wait_for_connections(proxy: &FaultProxy, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.connections() != n {
            assert!(
                Instant::now() < deadline,
                "{} connections, expected {n}",
                proxy.connections()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn timed_out(error: &std::io::Error) -> bool {
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
    }

    #[test]
    fn forwards_both_ways_and_counts_live_connections() {
        let proxy = FaultProxy::start(echo_server());
        let mut first = client(&proxy);
        let mut second = client(&proxy);
        assert_eq!(echo(&mut first, "hello").unwrap(), "hello");
        assert_eq!(echo(&mut second, "world").unwrap(), "world");
        wait_for_connections(&proxy, 2);
        first.shutdown(Shutdown::Both).unwrap();
        drop(first);
        wait_for_connections(&proxy, 1);
        assert_eq!(echo(&mut second, "still").unwrap(), "still");
    }

    #[test]
    fn reset_gives_open_connections_a_reset_and_forwards_new_ones() {
        let proxy = FaultProxy::start(echo_server());
        let mut open = client(&proxy);
        assert_eq!(echo(&mut open, "before").unwrap(), "before");

        proxy.reset();

        assert_eq!(proxy.connections(), 0);
        let error = read(&mut open, 1).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
        let mut next = client(&proxy);
        assert_eq!(echo(&mut next, "after").unwrap(), "after");
    }

    #[test]
    fn stall_holds_the_bytes_with_the_sockets_open_and_thaw_delivers_them() {
        let proxy = FaultProxy::start(echo_server());
        let mut open = client(&proxy);
        assert_eq!(echo(&mut open, "before").unwrap(), "before");

        proxy.stall();

        let error = echo(&mut open, "held").unwrap_err();
        assert!(timed_out(&error), "{error}");
        // Still open: more can be written, and the proxy keeps accepting.
        open.write_all(b" more").unwrap();
        let mut late = client(&proxy);
        let error = echo(&mut late, "late").unwrap_err();
        assert!(timed_out(&error), "{error}");
        wait_for_connections(&proxy, 2);

        proxy.thaw();

        open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(read(&mut open, 9).unwrap(), "held more");
        assert_eq!(read(&mut late, 4).unwrap(), "late");
        assert_eq!(echo(&mut open, "after").unwrap(), "after");
    }

    #[test]
    fn cut_closes_and_refuses_until_restored() {
        let proxy = FaultProxy::start(echo_server());
        let mut open = client(&proxy);
        assert_eq!(echo(&mut open, "before").unwrap(), "before");

        proxy.cut();

        assert_eq!(proxy.connections(), 0);
        let error = read(&mut open, 1).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
        // A new connection is closed at once: no byte comes back, and the
        // connection ends instead of timing out.
        let mut refused = client(&proxy);
        let _ = refused.write_all(b"anyone?");
        match read(&mut refused, 7) {
            Ok(text) => panic!("a cut link answered {text:?}"),
            Err(error) => assert!(
                matches!(
                    error.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ),
                "{error}"
            ),
        }

        proxy.restore();

        let mut next = client(&proxy);
        assert_eq!(echo(&mut next, "after").unwrap(), "after");
    }

    #[test]
    fn dropping_the_proxy_closes_its_port() {
        let proxy = FaultProxy::start(echo_server());
        let addr = proxy.addr();
        let mut open = client(&proxy);
        assert_eq!(echo(&mut open, "before").unwrap(), "before");

        drop(proxy);

        let error = TcpStream::connect(addr).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionRefused, "{error}");
        // The open connection ended too (closed, not left hanging).
        let error = read(&mut open, 1).unwrap_err();
        assert!(!timed_out(&error), "{error}");
    }
}
