//! Webhooks over real HTTP on every backend: the real binary, the in-process DNS
//! server, and a local receiver on 127.0.0.1 (127.0.0.2 where an allowed address is
//! needed beside a refused one). Signatures are checked with an implementation of
//! the Standard Webhooks scheme written here from the specification, over RustCrypto's
//! HMAC-SHA256 (the service uses ring's).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dns_hickory::test_support::TestDnsServer;
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Org, TestApp, spawn_sibling};
use crate::lifecycle::{all_events, app_with, call, publish_generated};
use crate::verifier::{TestClock, next_check};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// What the receiver answered (`None`: it hung up without answering).
    answered: Option<u16>,
}

/// How the receiver answers the `n`th request (counted from 0) for a webhook-id.
type Script = dyn Fn(&str, usize) -> Reply + Send + Sync;

#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Answer this status after `delay`.
    Status(u16, Duration),
    /// Hold the connection without answering until the receiver stops.
    Hang,
}

/// A webhook receiver: HTTP/1.1 on a loopback address, one thread per connection.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Requests per webhook-id being handled right now, and the most ever at once.
    in_flight: Arc<Mutex<(HashMap<String, usize>, usize)>>,
    connections: Arc<Mutex<usize>>,
    script: Arc<Mutex<Arc<Script>>>,
    stopped: Arc<AtomicBool>,
}

impl Receiver {
    fn start(ip: &str, script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on(SocketAddr::new(ip.parse().unwrap(), 0), script)
    }

    fn start_on(
        addr: SocketAddr,
        script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let receiver = Self {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            in_flight: Arc::default(),
            connections: Arc::default(),
            script: Arc::new(Mutex::new(Arc::new(script))),
            stopped: Arc::default(),
        };
        let (received, in_flight, connections, script, stopped) = (
            Arc::clone(&receiver.received),
            Arc::clone(&receiver.in_flight),
            Arc::clone(&receiver.connections),
            Arc::clone(&receiver.script),
            Arc::clone(&receiver.stopped),
        );
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        *lock(&connections) += 1;
                        let (received, in_flight, script, stopped) = (
                            Arc::clone(&received),
                            Arc::clone(&in_flight),
                            Arc::clone(&script),
                            Arc::clone(&stopped),
                        );
                        std::thread::spawn(move || {
                            serve(stream, &received, &in_flight, &script, &stopped);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set_script(&self, script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) {
        *lock(&self.script) = Arc::new(script);
    }

    fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    fn connections(&self) -> usize {
        *lock(&self.connections)
    }

    fn max_in_flight_per_id(&self) -> usize {
        lock(&self.in_flight).1
    }

    /// Waits until `done` holds for what was received, for at most `limit`.
    fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&[Received]) -> bool) {
        let started = Instant::now();
        loop {
            if done(&self.received()) {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{what}: received {:#?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn serve(
    mut stream: TcpStream,
    received: &Mutex<Vec<Received>>,
    in_flight: &Mutex<(HashMap<String, usize>, usize)>,
    script: &Mutex<Arc<Script>>,
    stopped: &AtomicBool,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let length: usize = headers["content-length"].parse().unwrap();
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    let id = headers.get("webhook-id").cloned().unwrap_or_default();
    let nth = lock(received).iter().filter(|r| r.id == id).count();
    let reply = (lock(script).clone())(&id, nth);
    let index = {
        let mut received = lock(received);
        received.push(Received {
            id: id.clone(),
            timestamp: headers
                .get("webhook-timestamp")
                .cloned()
                .unwrap_or_default(),
            signature: headers
                .get("webhook-signature")
                .cloned()
                .unwrap_or_default(),
            body,
            answered: None,
        });
        received.len() - 1
    };
    {
        let mut counts = lock(in_flight);
        let now = {
            let count = counts.0.entry(id.clone()).or_default();
            *count += 1;
            *count
        };
        counts.1 = counts.1.max(now);
    }
    match reply {
        Reply::Status(status, delay) => {
            std::thread::sleep(delay);
            let answer =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if stream.write_all(answer.as_bytes()).is_ok() {
                lock(received)[index].answered = Some(status);
            }
        }
        Reply::Hang => {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    if let Some(count) = lock(in_flight).0.get_mut(&id) {
        *count -= 1;
    }
}

/// The Standard Webhooks check, from the specification: the secret is base64 after
/// `whsec_`; the signature is `v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`;
/// the header may carry several space-separated signatures.
fn signature_verifies(secret: &str, received: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    received
        .signature
        .split(' ')
        .any(|candidate| candidate.strip_prefix("v1,") == Some(expected.as_str()))
}

/// Runs the Python verification snippet of docs/api.md ("Verifying a delivery") on a
/// delivery, as a customer would copy it.
fn documented_snippet_verifies(secret: &str, received: &Received) -> bool {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let after = docs.split("**Verifying a delivery**").nth(1).unwrap();
    let snippet = after
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let input = json!({
        "secret": secret,
        "headers": {
            "webhook-id": received.id,
            "webhook-timestamp": received.timestamp,
            "webhook-signature": received.signature,
        },
        "body": received.body,
    });
    let program = format!(
        "{snippet}\nimport json, sys\nd = json.loads(sys.stdin.read())\nprint(verify(d['secret'], d['headers'], d['body'].encode()))\n"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &program])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the documented snippet");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the snippet failed: {output:?}");
    match String::from_utf8_lossy(&output.stdout).trim() {
        "True" => true,
        "False" => false,
        other => panic!("the snippet printed {other:?}"),
    }
}

fn create_webhook(app: &TestApp, org: &Org, body: &Value) -> crate::helpers::Answer {
    call(
        app,
        org,
        "POST",
        "/api/v1/webhooks",
        Some(&body.to_string()),
    )
}

fn generate(app: &TestApp, org: &Org, email: &str) -> Value {
    let answer = app.generate(org, &format!(r#"{{"email":"{email}"}}"#));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

/// Lets deliveries reach loopback receivers over plain HTTP (the test-only settings),
/// looking for due ones every tenth of a second.
const RECEIVER_SETTINGS: [(&str, &str); 3] = [
    ("DOMAIN_API_WEBHOOK_ALLOW_HTTP", "1"),
    ("DOMAIN_API_WEBHOOK_ALLOW_PRIVATE", "1"),
    ("DOMAIN_API_WEBHOOK_POLL_INTERVAL", "100ms"),
];

fn settings<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    RECEIVER_SETTINGS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

async fn verified_and_failing_arrive_signed(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let clock = TestClock::new();
    let clock_path = clock.path();
    let app = app_with(
        kind,
        &dns,
        &settings(&[
            ("DOMAIN_API_VERIFIER", "on"),
            ("DOMAIN_API_VERIFY_POLL_INTERVAL", "100ms"),
            ("DOMAIN_API_TEST_CLOCK_FILE", clock_path.as_str()),
        ]),
    )
    .await;
    let receiver = Receiver::start("127.0.0.1", |_, _| Reply::Status(204, Duration::ZERO));
    let org = app.create_org("listening");
    let created = create_webhook(
        &app,
        &org,
        &json!({"url": receiver.url("/hooks/domain-api"), "events": ["domain.verified", "domain.failing"]}),
    );
    assert_eq!(created.status, 201, "{kind:?}: {}", created.body);
    let created = created.json();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        created["events"],
        json!(["domain.verified", "domain.failing"])
    );

    let domain = "hooked.example";
    let records = generate(&app, &org, &format!("x@{domain}"));
    publish_generated(&dns, domain, &records);
    next_check(&app, &org, domain, &clock);
    receiver.wait_for(Duration::from_secs(15), "domain.verified", |r| {
        !r.is_empty()
    });

    let verified = receiver.received()[0].clone();
    assert!(
        signature_verifies(&secret, &verified),
        "{kind:?}: {verified:?}"
    );
    let body: Value = serde_json::from_str(&verified.body).unwrap();
    assert_eq!(body["type"], "domain.verified", "{kind:?}");
    assert_eq!(body["data"], json!({"domain": domain}));
    assert_eq!(verified.id, body["id"].to_string());
    // The same event the events list shows, with the same id.
    let listed = all_events(&app, &org, 100);
    let event = listed
        .iter()
        .find(|e| e["type"] == "domain.verified")
        .unwrap();
    assert_eq!(event["id"], body["id"]);
    assert_eq!(event["createdAt"], body["createdAt"]);
    // Signed at the service's clock, which the test moved on.
    let timestamp: i64 = verified.timestamp.parse().unwrap();
    let offset: i64 = std::fs::read_to_string(&clock_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let expected = chrono::Utc::now().timestamp() + offset;
    assert!(
        (timestamp - expected).abs() < 30,
        "{timestamp} vs {expected}"
    );
    // The snippet docs/api.md gives customers accepts it too.
    assert!(
        documented_snippet_verifies(&secret, &verified),
        "{kind:?}: the documented Python snippet refused a genuine delivery"
    );
    // A forged body or another secret does not verify.
    let forged = Received {
        body: verified.body.replace(domain, "other.example"),
        ..verified.clone()
    };
    assert!(!signature_verifies(&secret, &forged));
    assert!(!signature_verifies(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &verified
    ));
    assert!(!documented_snippet_verifies(&secret, &forged));

    // A record goes: after two checks, domain.failing arrives; nothing else was sent
    // (created, sender.* are not among the endpoint's types).
    dns.clear(&format!("_dmarc.{domain}"));
    next_check(&app, &org, domain, &clock);
    next_check(&app, &org, domain, &clock);
    receiver.wait_for(Duration::from_secs(15), "domain.failing", |r| r.len() >= 2);
    let failing = receiver.received()[1].clone();
    assert!(signature_verifies(&secret, &failing));
    let body: Value = serde_json::from_str(&failing.body).unwrap();
    assert_eq!(body["type"], "domain.failing", "{kind:?}");
    // The endpoint's deliveries are written with their events: exactly these two,
    // both delivered, so nothing else was or will be sent.
    let webhook = created["id"].as_str().unwrap();
    let listed = wait_delivered(&app, &org, webhook, 2);
    let types: Vec<&Value> = listed.iter().map(|d| &d["event"]["type"]).collect();
    assert_eq!(types, [&json!("domain.verified"), &json!("domain.failing")]);
    assert_eq!(
        receiver.received().len(),
        2,
        "{kind:?}: {:#?}",
        receiver.received()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_domain_and_a_failing_one_are_announced_with_a_signature_that_verifies() {
    for kind in backends() {
        verified_and_failing_arrive_signed(kind).await;
    }
}

fn deliveries(app: &TestApp, org: &Org, webhook: &str) -> Vec<Value> {
    let answer = call(
        app,
        org,
        "GET",
        &format!("/api/v1/webhooks/{webhook}/deliveries"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["deliveries"].as_array().unwrap().clone()
}

async fn retries_until_delivered(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let clock = TestClock::new();
    let clock_path = clock.path();
    // The default retry schedule (5 s, 5 min, 30 min, …), through the service's clock.
    let app = app_with(
        kind,
        &dns,
        &settings(&[("DOMAIN_API_TEST_CLOCK_FILE", clock_path.as_str())]),
    )
    .await;
    let receiver = Receiver::start("127.0.0.1", |_, nth| {
        Reply::Status(if nth < 3 { 500 } else { 200 }, Duration::ZERO)
    });
    let org = app.create_org("flaky");
    let webhook = create_webhook(
        &app,
        &org,
        &json!({"url": receiver.url("/in"), "events": ["domain.created"]}),
    )
    .json();
    let webhook = webhook["id"].as_str().unwrap().to_owned();
    generate(&app, &org, "x@flaky.example");

    for attempt in 1..=4 {
        receiver.wait_for(
            Duration::from_secs(15),
            &format!("attempt {attempt}"),
            |r| r.len() >= attempt && r[attempt - 1].answered.is_some(),
        );
        let listed = deliveries(&app, &org, &webhook);
        // Wait for the attempt to be recorded, then move past the next one.
        let started = Instant::now();
        let listed = loop {
            if listed_attempts(&listed) >= attempt {
                break listed;
            }
            let again = deliveries(&app, &org, &webhook);
            if listed_attempts(&again) >= attempt {
                break again;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{again:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        if attempt < 4 {
            assert_eq!(listed[0]["state"], "pending", "{kind:?}");
            clock.move_past(&listed[0]["nextAttemptAt"]);
        }
    }
    let received = receiver.received();
    assert_eq!(
        received.len(),
        4,
        "{kind:?}: one more delivery than failures"
    );
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "the same webhook-id each time"
    );
    let listed = deliveries(&app, &org, &webhook);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "delivered", "{kind:?}");
    assert!(listed[0]["nextAttemptAt"].is_null());
    let codes: Vec<&Value> = listed[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(500), &json!(200)]);
    // The waits between attempts follow the schedule: 5 s, then 5 minutes, 30 minutes.
    let times: Vec<chrono::DateTime<chrono::Utc>> = listed[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["at"].as_str().unwrap().parse().unwrap())
        .collect();
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    for (gap, (min, max)) in gaps.iter().zip([(5, 20), (300, 320), (1800, 1820)]) {
        assert!((min..=max).contains(gap), "{kind:?}: gaps {gaps:?}");
    }
}

/// Waits until the endpoint lists `count` deliveries, all delivered; the list.
fn wait_delivered(app: &TestApp, org: &Org, webhook: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let listed = deliveries(app, org, webhook);
        if listed.len() == count && listed.iter().all(|d| d["state"] == "delivered") {
            return listed;
        }
        assert!(
            listed.len() <= count && started.elapsed() < Duration::from_secs(30),
            "{listed:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listed_attempts(listed: &[Value]) -> usize {
    listed
        .first()
        .map_or(0, |d| d["attempts"].as_array().unwrap().len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_gets_the_same_webhook_id_until_it_answers_2xx() {
    for kind in backends() {
        retries_until_delivered(kind).await;
    }
}

async fn nothing_lost_across_kill_9(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let clock = TestClock::new();
    let clock_path = clock.path();
    let extra = settings(&[
        ("DOMAIN_API_TEST_CLOCK_FILE", clock_path.as_str()),
        ("DOMAIN_API_WEBHOOK_TIMEOUT_MS", "2000"),
    ]);
    let mut first = app_with(kind, &dns, &extra).await;
    // The receiver takes every request and answers none: deliveries are in flight
    // (leased) when the instance dies.
    let receiver = Receiver::start("127.0.0.1", |_, _| Reply::Hang);
    let org = first.create_org("crashy");
    assert_eq!(
        create_webhook(&first, &org, &json!({"url": receiver.url("/in")})).status,
        201
    );
    for n in 0..5 {
        generate(&first, &org, &format!("x@crash{n}.example"));
    }
    receiver.wait_for(Duration::from_secs(15), "deliveries in flight", |r| {
        r.len() >= 4
    });
    first.kill();

    receiver.set_script(|_, _| Reply::Status(200, Duration::ZERO));
    let second = spawn_sibling(&first);
    // Past the dead instance's leases and any retry it had scheduled.
    std::fs::write(&clock_path, "3600").unwrap();
    let events: Vec<String> = all_events(&second, &org, 1000)
        .iter()
        .map(|e| e["id"].to_string())
        .collect();
    assert!(events.len() >= 15, "{events:?}");
    receiver.wait_for(Duration::from_secs(30), "every event delivered", |r| {
        events.iter().all(|id| {
            r.iter()
                .any(|got| &got.id == id && got.answered == Some(200))
        })
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_deliveries_in_flight_loses_none_after_a_restart() {
    for kind in backends() {
        nothing_lost_across_kill_9(kind).await;
    }
}

async fn two_senders_one_outbox(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let first = app_with(kind, &dns, &settings(&[])).await;
    let second = spawn_sibling(&first);
    // Each answer takes a moment, so a second delivery of the same event at once
    // would overlap the first.
    let receiver = Receiver::start("127.0.0.1", |_, _| {
        Reply::Status(200, Duration::from_millis(30))
    });
    let org = first.create_org("busy");
    assert_eq!(
        create_webhook(&first, &org, &json!({"url": receiver.url("/in")})).status,
        201
    );
    for n in 0..20 {
        let app = if n % 2 == 0 { &first } else { &second };
        generate(app, &org, &format!("x@both{n}.example"));
    }
    let events: Vec<String> = all_events(&first, &org, 1000)
        .iter()
        .map(|e| e["id"].to_string())
        .collect();
    receiver.wait_for(Duration::from_secs(60), "every event delivered", |r| {
        events.iter().all(|id| r.iter().any(|got| &got.id == id))
    });
    // Every delivery finished after one attempt: none can be sent again.
    let webhook = call(&first, &org, "GET", "/api/v1/webhooks", None).json()["webhooks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = wait_delivered(&first, &org, &webhook, events.len());
    assert!(
        listed
            .iter()
            .all(|d| d["attempts"].as_array().unwrap().len() == 1),
        "{kind:?}: {listed:?}"
    );
    assert_eq!(receiver.max_in_flight_per_id(), 1, "{kind:?}");
    let received = receiver.received();
    assert_eq!(received.len(), events.len(), "{kind:?}: each event once");
    // Each instance counts what it delivered, and reports the outbox it last read.
    let delivered_by = |app: &TestApp| -> u64 {
        let metrics = app.get("/metrics").unwrap().body;
        assert!(
            metrics.contains("# TYPE domain_api_webhook_outbox_depth gauge")
                && metrics.contains("# TYPE domain_api_webhook_outbox_oldest_age_seconds gauge"),
            "{kind:?}: {metrics}"
        );
        metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix("domain_api_webhook_deliveries_total{outcome=\"delivered\"} ")
            })
            .map_or(0, |count| count.trim().parse().unwrap())
    };
    assert_eq!(
        delivered_by(&first) + delivered_by(&second),
        u64::try_from(events.len()).unwrap(),
        "{kind:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_one_database_never_send_an_event_twice_at_once() {
    for kind in backends() {
        two_senders_one_outbox(kind).await;
    }
}

async fn refused_addresses(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    // No test-only settings: the defaults.
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("curious");
    dns.add_address("internal.hooks.example", "127.0.0.1".parse().unwrap());
    dns.add_address("mixed.hooks.example", "10.1.2.3".parse().unwrap());
    dns.add_address("nat64.hooks.example", "64:ff9b:1::7f00:1".parse().unwrap());
    for url in [
        "http://127.0.0.1/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://10.255.0.7:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://2130706433/hook",
        // Accepted before issue 21: local-use NAT64, SIIT and Teredo forms of
        // 127.0.0.1, a port below 1024 that is not the web's, a name whose only
        // address is local-use NAT64.
        "https://[64:ff9b:1::7f00:1]/hook",
        "https://[::ffff:0:7f00:1]/hook",
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
        "https://[2001:20::1]/hook",
        "https://hooks.example.com:22/hook",
        "https://nat64.hooks.example/hook",
        "https://internal.hooks.example/hook",
        "https://mixed.hooks.example/hook",
        "https://nowhere.hooks.example/hook",
    ] {
        let answer = create_webhook(&app, &org, &json!({ "url": url }));
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (400, format!("Invalid webhook URL: {url}").as_str()),
            "{kind:?}"
        );
    }
    let listed = call(&app, &org, "GET", "/api/v1/webhooks", None).json();
    assert_eq!(listed, json!({"webhooks": []}));
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_private_and_link_local_urls_are_refused_at_creation() {
    for kind in backends() {
        refused_addresses(kind).await;
    }
}

async fn rebinding_refused_at_delivery(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    // 127.0.0.2 is allowed (an "internal receiver"); 127.0.0.1 is not.
    let allowed = Receiver::start("127.0.0.2", |_, _| Reply::Status(200, Duration::ZERO));
    let forbidden = Receiver::start_on(
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), allowed.addr.port()),
        |_, _| Reply::Status(200, Duration::ZERO),
    );
    let app = app_with(
        kind,
        &dns,
        &[
            ("DOMAIN_API_WEBHOOK_ALLOW_HTTP", "1"),
            ("DOMAIN_API_WEBHOOK_ALLOW_NETS", "127.0.0.2/32"),
            ("DOMAIN_API_WEBHOOK_POLL_INTERVAL", "100ms"),
        ],
    )
    .await;
    let org = app.create_org("rebinder");
    let host = "hook.rebind.example";
    dns.add_address(host, "127.0.0.2".parse().unwrap());
    let url = format!("http://{host}:{}/in", allowed.addr.port());
    let created = create_webhook(
        &app,
        &org,
        &json!({"url": url, "events": ["domain.created"]}),
    );
    assert_eq!(created.status, 201, "{kind:?}: {}", created.body);
    let webhook = created.json()["id"].as_str().unwrap().to_owned();
    generate(&app, &org, "x@first-rebind.example");
    allowed.wait_for(Duration::from_secs(15), "the allowed delivery", |r| {
        r.len() == 1
    });

    // The name now points at a loopback address the settings do not allow.
    dns.clear(host);
    dns.add_address(host, "127.0.0.1".parse().unwrap());
    generate(&app, &org, "x@second-rebind.example");
    let started = Instant::now();
    let refused = loop {
        let listed = deliveries(&app, &org, &webhook);
        if let Some(attempt) = listed
            .iter()
            .filter_map(|d| d["attempts"].as_array().and_then(|a| a.first()))
            .find(|a| !a["error"].is_null())
        {
            break attempt.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{listed:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(refused["error"], "address not allowed", "{kind:?}");
    assert!(refused["statusCode"].is_null());
    assert_eq!(
        forbidden.connections(),
        0,
        "{kind:?}: connected to 127.0.0.1"
    );
    assert_eq!(allowed.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_rebound_to_a_refused_address_is_not_connected_to_at_delivery() {
    for kind in backends() {
        rebinding_refused_at_delivery(kind).await;
    }
}

async fn endpoints_belong_to_their_organization(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(
        kind,
        &dns,
        &settings(&[("DOMAIN_API_MAX_WEBHOOKS_PER_ORG", "2")]),
    )
    .await;
    let receiver = Receiver::start("127.0.0.1", |_, _| Reply::Status(200, Duration::ZERO));
    let owner = app.create_org("owner");
    let other = app.create_org("other");
    let first = create_webhook(&app, &owner, &json!({"url": receiver.url("/a")})).json();
    let id = first["id"].as_str().unwrap();
    assert_eq!(first["events"].as_array().unwrap().len(), 14);
    assert_eq!(
        create_webhook(&app, &owner, &json!({"url": receiver.url("/b")})).status,
        201
    );
    let third = create_webhook(&app, &owner, &json!({"url": receiver.url("/c")}));
    assert_eq!(
        (third.status, third.body.as_str()),
        (403, "Webhook limit reached")
    );

    // The list never shows a secret; another organization sees nothing of it.
    let listed = call(&app, &owner, "GET", "/api/v1/webhooks", None);
    assert!(!listed.body.contains("whsec_"), "{}", listed.body);
    assert_eq!(listed.json()["webhooks"].as_array().unwrap().len(), 2);
    for (method, path) in [
        ("DELETE", format!("/api/v1/webhooks/{id}")),
        ("GET", format!("/api/v1/webhooks/{id}/deliveries")),
    ] {
        let answer = call(&app, &other, method, &path, None);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (404, "Webhook not found")
        );
    }
    // Another organization's events never reach this endpoint.
    generate(&app, &other, "x@other-org.example");
    assert!(deliveries(&app, &owner, id).is_empty(), "{kind:?}");
    assert!(receiver.received().is_empty());
    // Deleted: 204, then gone, and the limit frees a place.
    let deleted = call(
        &app,
        &owner,
        "DELETE",
        &format!("/api/v1/webhooks/{id}"),
        None,
    );
    assert_eq!(deleted.status, 204);
    let again = call(
        &app,
        &owner,
        "DELETE",
        &format!("/api/v1/webhooks/{id}"),
        None,
    );
    assert_eq!(again.status, 404);
    assert_eq!(
        create_webhook(&app, &owner, &json!({"url": receiver.url("/c")})).status,
        201
    );
    // No secret or token in the server's log.
    let secret = first["secret"].as_str().unwrap();
    assert!(!app.log().contains(secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_the_organizations_own_and_bounded() {
    for kind in backends() {
        endpoints_belong_to_their_organization(kind).await;
    }
}

async fn a_dead_receiver_holds_only_its_share(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(
        kind,
        &dns,
        &settings(&[("DOMAIN_API_WEBHOOK_TIMEOUT_MS", "20000")]),
    )
    .await;
    // One organization's receiver takes every request and never answers (until the
    // 20 s timeout); the other's answers at once.
    let dead = Receiver::start("127.0.0.1", |_, _| Reply::Hang);
    let alive = Receiver::start("127.0.0.1", |_, _| Reply::Status(204, Duration::ZERO));
    let stuck = app.create_org("stuck");
    let lively = app.create_org("lively");
    for (org, receiver) in [(&stuck, &dead), (&lively, &alive)] {
        let created = create_webhook(&app, org, &json!({"url": receiver.url("/in")}));
        assert_eq!(created.status, 201, "{kind:?}: {}", created.body);
    }
    // 60 events for the dead receiver, more than the instance's 16 slots.
    for n in 0..20 {
        generate(&app, &stuck, &format!("x@stuck{n}.example"));
    }
    dead.wait_for(Duration::from_secs(10), "the dead receiver's share", |r| {
        r.len() >= 4
    });
    let started = Instant::now();
    generate(&app, &lively, "x@lively.example");
    alive.wait_for(
        Duration::from_secs(3),
        "the other organization's events, well before the dead ones time out",
        |r| r.len() == 3,
    );
    let waited = started.elapsed();
    // The dead receiver holds its organization's share (4), never more.
    assert_eq!(dead.received().len(), 4, "{kind:?}: {:#?}", dead.received());
    assert!(waited < Duration::from_secs(3), "{kind:?}: {waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_receiver_never_delays_another_organizations_deliveries() {
    for kind in backends() {
        a_dead_receiver_holds_only_its_share(kind).await;
    }
}

/// The endpoint `id`'s `health` as `GET /api/v1/webhooks` lists it.
fn listed_health(app: &TestApp, org: &Org, id: &str) -> String {
    let answer = call(app, org, "GET", "/api/v1/webhooks", None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|hook| hook["id"] == id)
        .unwrap()["health"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_silent_endpoint_is_degraded(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(
        kind,
        &dns,
        &settings(&[
            ("DOMAIN_API_WEBHOOK_TIMEOUT_MS", "1000"),
            (
                "DOMAIN_API_WEBHOOK_RETRY_SCHEDULE",
                "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms",
            ),
        ]),
    )
    .await;
    let silent = Receiver::start("127.0.0.1", |_, _| Reply::Hang);
    let org = app.create_org("silent");
    let created = create_webhook(&app, &org, &json!({"url": silent.url("/in")}));
    assert_eq!(created.status, 201, "{kind:?}: {}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(listed_health(&app, &org, &id), "ok", "{kind:?}");
    // 12 deliveries: the organization's share (4) at once, all unanswered.
    for n in 0..4 {
        generate(&app, &org, &format!("x@silent{n}.example"));
    }
    let started = Instant::now();
    while listed_health(&app, &org, &id) != "degraded" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{kind:?}: never degraded after {} requests",
            silent.connections()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Degraded: one attempt in flight at a time. In 2.5 s of 1 s timeouts, at most
    // 3 new requests (4 at a time would make 8 or more).
    let before = silent.connections();
    std::thread::sleep(Duration::from_millis(2500));
    let during = silent.connections() - before;
    assert!(
        (1..=3).contains(&during),
        "{kind:?}: {during} requests to a degraded endpoint in 2.5 s"
    );
    // Any HTTP answer makes it ok again.
    silent.set_script(|_, _| Reply::Status(503, Duration::ZERO));
    let started = Instant::now();
    while listed_health(&app, &org, &id) != "ok" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{kind:?}: still degraded after an answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_never_answers_is_degraded_gets_one_attempt_at_a_time_and_recovers() {
    for kind in backends() {
        a_silent_endpoint_is_degraded(kind).await;
    }
}
