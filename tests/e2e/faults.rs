//! Faults while 64 registrations are in flight — the database link reset, cut for a
//! second, stalled for three (a [`FaultProxy`] on PostgreSQL), the process killed with
//! SIGKILL (SQLite) — and what must hold whatever the timing (DESIGN.md, "Shared
//! resources"): (a) every answer within the statement timeout + 1 s, (b) never a 500,
//! (c) every 2xx stored, (d) a keyed request retried after the fault replays or runs
//! once, (e) one active sender per organization, (f) one active DKIM key per domain.
//! The same burst without a fault is the control: if it misses the bound, the
//! machine was too busy for (a) to say anything about the faults.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::postgres_url;

use crate::helpers::{
    Answer, Options, Org, TestApp, answer, spawn_app_through_proxy, spawn_app_with, spawn_sibling,
};
use crate::lifecycle::call;

/// Registrations in flight when the fault strikes.
const CALLS: usize = 64;
const ORGS: usize = 3;
/// Domains each organization owns before the burst; most calls reuse one.
const DOMAINS_PER_ORG: usize = 2;
/// `DOMAIN_API_DB_STATEMENT_TIMEOUT_MS`, and the pool's wait
/// (`DOMAIN_API_DB_WAIT_TIMEOUT_MS`): the service's own deadline on each database wait.
const STATEMENT_TIMEOUT_MS: u64 = 1000;
/// The longest a request may take, fault or not: the statement timeout + 1 s, plus
/// 2.5 s for scheduling — a debug build whose 64 request threads (timed from before
/// they are scheduled), server and PostgreSQL share two cores with the test itself.
/// Still well inside the stall ([`STALL`]): a request held until the thaw, as
/// before, cannot pass.
const BOUND: Duration = Duration::from_millis(STATEMENT_TIMEOUT_MS + 1000 + 2500);
/// How long `/readyz` may take while the database does not answer: its own 1 s, plus
/// scheduling.
const READY_BOUND: Duration = Duration::from_millis(1000 + 1500);
/// How long the stall lasts: twice [`BOUND`].
const STALL: Duration = Duration::from_secs(9);
/// How long a client waits for an answer before counting it lost.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The answer to a request whose key another request holds: not kept, sent again.
const IN_PROGRESS: &str = "A request with this Idempotency-Key is in progress";
/// How long the keyed retries after a fault may take to settle, in all.
const SETTLE: Duration = Duration::from_secs(20);
/// `DOMAIN_API_IDEMPOTENCY_LEASE`: a key whose holder died with the fault (or the
/// process) is answered 409 "in progress" until its lease runs out, so the retries
/// must outlast it (30 s by default). 5 s is still twice the longest a request may
/// take here.
const LEASE: &str = "5s";

/// Held for each test's whole run: one burst at a time in this binary. Bound (a) is a
/// latency on two cores, and a second burst of 64 beside it would measure that
/// burst, not the fault. (Not a database lock: every test has its own.)
static ONE_BURST_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One registration of the burst.
#[derive(Debug, Clone)]
struct Call {
    org: usize,
    email: String,
    domain: String,
    key: Option<String>,
}

impl Call {
    fn body(&self) -> String {
        format!(r#"{{"email":"{}"}}"#, self.email)
    }
}

/// What a client saw: an answer or the error that replaced it, and how long it took.
#[derive(Debug)]
struct Outcome {
    answer: Result<Answer, String>,
    elapsed: Duration,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        self.answer.as_ref().ok().map(|a| a.status)
    }

    fn describe(&self) -> String {
        match &self.answer {
            Ok(a) => {
                let mut body: String = a.body.chars().take(60).collect();
                if body.len() < a.body.len() {
                    body.push('…');
                }
                let replay = if replayed(a) { " (replayed)" } else { "" };
                format!("{} {body:?}{replay} after {:.2?}", a.status, self.elapsed)
            }
            Err(e) => format!("no answer ({e}) after {:.2?}", self.elapsed),
        }
    }
}

/// Calls the app from the burst's threads; the test keeps the app itself (to kill it).
#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    agent: ureq::Agent,
}

impl Client {
    fn of(app: &TestApp) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CLIENT_TIMEOUT))
            .build()
            .into();
        Self {
            addr: app.addr,
            agent,
        }
    }

    fn generate(&self, org: &Org, call: &Call) -> Outcome {
        let mut request = ureq::http::Request::builder()
            .method("POST")
            .uri(format!(
                "http://{}/api/v1/emails/domains/generate",
                self.addr
            ))
            .header("X-Api-Access-Token", &org.access)
            .header("X-Api-Secret-Token", &org.secret)
            .header("Content-Type", "application/json");
        if let Some(key) = &call.key {
            request = request.header("Idempotency-Key", key);
        }
        let request = request.body(call.body().into_bytes()).unwrap();
        let started = Instant::now();
        let answer = self
            .agent
            .run(request)
            .map(answer)
            .map_err(|e| e.to_string());
        Outcome {
            answer,
            elapsed: started.elapsed(),
        }
    }
}

/// The organizations, their existing domains, and the burst's calls.
struct Workload {
    orgs: Vec<Org>,
    calls: Vec<Call>,
}

impl Workload {
    /// `ORGS` organizations with `DOMAINS_PER_ORG` domains each; 64 calls spread over
    /// them, 8 for new domains, keyed where `keyed(i)`.
    fn prepare(app: &TestApp, keyed: impl Fn(usize) -> bool) -> Self {
        let orgs: Vec<Org> = (0..ORGS)
            .map(|o| app.create_org(&format!("faulty-{o}")))
            .collect();
        for (o, org) in orgs.iter().enumerate() {
            for d in 0..DOMAINS_PER_ORG {
                let first = app.generate(org, &format!(r#"{{"email":"first@o{o}-d{d}.example"}}"#));
                assert_eq!(first.status, 201, "{}", first.body);
            }
        }
        let calls = (0..CALLS)
            .map(|i| {
                let org = i % ORGS;
                let domain = if i % 16 == 5 || i % 16 == 10 {
                    format!("o{org}-new{i}.example")
                } else {
                    format!("o{org}-d{}.example", (i / ORGS) % DOMAINS_PER_ORG)
                };
                Call {
                    org,
                    email: format!("u{i}@{domain}"),
                    domain,
                    key: keyed(i).then(|| format!("registration-{i}")),
                }
            })
            .collect();
        Self { orgs, calls }
    }
}

/// How far the burst is, for the thread that injects the fault.
struct Progress {
    started: AtomicUsize,
    answered: AtomicUsize,
}

impl Progress {
    /// Waits until `n` calls have been answered (at most 10 s). From the first answer
    /// on, the others are in every phase of their work, from the token check to the
    /// commit, whatever the machine's speed.
    fn wait_for_answers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.answered.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn in_flight(&self) -> usize {
        self.started.load(Ordering::SeqCst) - self.answered.load(Ordering::SeqCst)
    }
}

/// Sends every call at once, one thread each, and runs `fault` on this thread
/// meanwhile; returns each call's outcome and what `fault` returned.
fn burst<T>(
    client: &Client,
    work: &Workload,
    fault: impl FnOnce(&Progress) -> T,
) -> (Vec<Outcome>, T) {
    let progress = Progress {
        started: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
    };
    let barrier = Barrier::new(work.calls.len() + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = work
            .calls
            .iter()
            .map(|call| {
                let (progress, barrier) = (&progress, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    progress.started.fetch_add(1, Ordering::SeqCst);
                    let outcome = client.generate(&work.orgs[call.org], call);
                    progress.answered.fetch_add(1, Ordering::SeqCst);
                    outcome
                })
            })
            .collect();
        barrier.wait();
        let note = fault(&progress);
        let outcomes = threads
            .into_iter()
            .map(|t| t.join().expect("request thread"))
            .collect();
        (outcomes, note)
    })
}

/// Every violation found, by the letter of the invariant, reported together.
#[derive(Default)]
struct Violations(BTreeMap<char, Vec<String>>);

impl Violations {
    fn check(&mut self, letter: char, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.0.entry(letter).or_default().push(message());
        }
    }

    /// (a) and (b) on one outcome.
    fn check_outcome(&mut self, what: &str, outcome: &Outcome, bound: Option<Duration>) {
        if let Some(bound) = bound {
            self.check('a', outcome.elapsed <= bound, || {
                format!(
                    "{what}: answered later than {bound:.1?}: {}",
                    outcome.describe()
                )
            });
        }
        let status = outcome.status().unwrap_or(0);
        self.check('b', status < 500 || status == 503, || {
            format!("{what}: {}", outcome.describe())
        });
        if let Ok(answer) = &outcome.answer
            && answer.status == 503
        {
            self.check('b', answer.header("retry-after").is_some(), || {
                format!("{what}: a 503 without Retry-After")
            });
        }
    }

    /// Panics with every violation, and the first error lines of the servers' logs.
    fn assert_none(&self, summary: &str, apps: &[&TestApp]) {
        if self.0.is_empty() {
            return;
        }
        let mut text = String::new();
        for (letter, found) in &self.0 {
            text.push_str(&format!("({letter}) {} violation(s):\n", found.len()));
            for line in found.iter().take(12) {
                text.push_str(&format!("    {line}\n"));
            }
            if found.len() > 12 {
                text.push_str(&format!("    … and {} more\n", found.len() - 12));
            }
        }
        let logs: Vec<String> = apps.iter().map(|app| app.log()).collect();
        let errors: Vec<&str> = logs
            .iter()
            .flat_map(|log| log.lines())
            .filter(|line| line.contains("ERROR"))
            .take(8)
            .collect();
        panic!(
            "{summary}\n{text}first ERROR lines of the server log:\n{}",
            errors.join("\n")
        );
    }
}

fn replayed(answer: &Answer) -> bool {
    answer.header("Idempotent-Replayed") == Some("true")
}

/// Statuses of the outcomes, counted: `201×40 503×20 lost×4`.
fn tally<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for outcome in outcomes {
        let key = outcome
            .status()
            .map_or_else(|| "lost".to_owned(), |s| s.to_string());
        *counts.entry(key).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends every keyed call again, with the same key and body, after the fault: one
/// whose answer was lost or 5xx until it gets an answer that is kept (below 500 and
/// not "in progress"; at most `SETTLE` for all of them), and one that got an answer
/// below 500, which must come back replayed and identical (on a 503 it is sent
/// again, as a client would). Returns the final answer of every keyed call — the
/// first attempt's if it was kept — and every 2xx seen (call index, answer).
fn settle_keyed(
    client: &Client,
    work: &Workload,
    outcomes: &[Outcome],
    bound: Option<Duration>,
    violations: &mut Violations,
) -> (BTreeMap<usize, Answer>, Vec<(usize, Answer)>) {
    let kept = |o: &Outcome| {
        o.answer
            .as_ref()
            .ok()
            .filter(|a| a.status < 500 && a.body != IN_PROGRESS)
            .cloned()
    };
    let mut finals = BTreeMap::new();
    let mut pending: Vec<usize> = (0..work.calls.len())
        .filter(|&i| work.calls[i].key.is_some())
        .collect();
    let retried = pending
        .iter()
        .filter(|&&i| kept(&outcomes[i]).is_none())
        .count();
    let mut replays = 0;
    let deadline = Instant::now() + SETTLE;
    let mut last: HashMap<usize, Outcome> = HashMap::new();
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|&i| {
            let call = &work.calls[i];
            let outcome = client.generate(&work.orgs[call.org], call);
            violations.check_outcome(&format!("again: {}", call.email), &outcome, bound);
            let Some(answer) = kept(&outcome) else {
                last.insert(i, outcome);
                return true;
            };
            match kept(&outcomes[i]) {
                Some(first) => {
                    violations.check(
                        'd',
                        replayed(&answer)
                            && (answer.status, &answer.body) == (first.status, &first.body),
                        || {
                            format!(
                                "{} answered {}; the same request again got {}",
                                call.email,
                                outcomes[i].describe(),
                                outcome.describe()
                            )
                        },
                    );
                    finals.insert(i, first);
                }
                None => {
                    if replayed(&answer) {
                        replays += 1;
                    }
                    finals.insert(i, answer);
                }
            }
            false
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for i in &pending {
        violations.check('d', false, || {
            format!(
                "{} did not settle in {SETTLE:?} of retries: first {}, last {}",
                work.calls[*i].email,
                outcomes[*i].describe(),
                last[i].describe()
            )
        });
    }
    eprintln!(
        "faults: {retried} keyed call(s) without a kept answer retried: {replays} \
         replayed, {} unsettled",
        pending.len()
    );
    let mut succeeded: Vec<(usize, Answer)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.answer.as_ref().ok().map(|a| (i, a)))
        .filter(|(_, a)| (200..300).contains(&a.status))
        .map(|(i, a)| (i, a.clone()))
        .collect();
    succeeded.extend(
        finals
            .iter()
            .filter(|(_, a)| (200..300).contains(&a.status))
            .map(|(i, a)| (*i, a.clone())),
    );
    (finals, succeeded)
}

/// The keyed calls' final answers: each replayed the first attempt's kept 201, or ran
/// (once) now.
fn check_keyed_finals(work: &Workload, finals: &BTreeMap<usize, Answer>, v: &mut Violations) {
    for (i, answer) in finals {
        let email = &work.calls[*i].email;
        let ran_without_its_key = answer.status == 409 && answer.body == "Email is already taken";
        v.check('d', !ran_without_its_key, || {
            format!(
                "{email}: the retry answered 409 Email is already taken, not replayed — an \
                 attempt without a kept answer registered it anyway"
            )
        });
        v.check('d', ran_without_its_key || answer.status == 201, || {
            let replay = if replayed(answer) { " (replayed)" } else { "" };
            format!(
                "{email}: settled on {} {:?}{replay}",
                answer.status, answer.body
            )
        });
    }
}

/// A one-page list (or one object's `field`) read back after the fault; a 503 (the
/// service still recovering) is read again a little later, for at most 10 s.
fn get(app: &TestApp, org: &Org, path: &str, field: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = call(app, org, "GET", path, None);
        if page.status != 503 || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(page.status, 200, "GET {path}: {}", page.body);
    let page = page.json();
    assert!(page["next"].is_null(), "one page: {page}");
    page[field].as_array().unwrap().clone()
}

/// (c), (d) as the events tell it, (e) and (f), read back through the API.
fn check_stored(
    app: &TestApp,
    work: &Workload,
    finals: &BTreeMap<usize, Answer>,
    succeeded: &[(usize, Answer)],
    v: &mut Violations,
) {
    let mut registered: HashMap<String, usize> = HashMap::new();
    let mut senders: HashMap<String, Value> = HashMap::new();
    let mut active_keys: HashMap<String, Vec<Value>> = HashMap::new();
    for (o, org) in work.orgs.iter().enumerate() {
        for event in get(app, org, "/api/v1/events?limit=1000", "events") {
            if event["type"] == "sender.registered" {
                let email = event["data"]["email"].as_str().unwrap().to_owned();
                *registered.entry(email).or_default() += 1;
            }
        }
        let listed = get(app, org, "/api/v1/emails/senders?limit=1000", "senders");
        let active = listed.iter().filter(|s| s["active"] == true).count();
        v.check('e', active == 1, || {
            format!("organization {o} has {active} active senders")
        });
        for sender in listed {
            senders.insert(sender["email"].as_str().unwrap().to_owned(), sender);
        }
        for domain in get(app, org, "/api/v1/emails/domains?limit=1000", "domains") {
            let name = domain["domain"].as_str().unwrap();
            let path = format!("/api/v1/emails/domains/{name}");
            let keys: Vec<Value> = get(app, org, &path, "dkim")
                .into_iter()
                .filter(|k| k["state"] == "active")
                .collect();
            v.check('f', keys.len() == 1, || {
                format!("{name} has {} active DKIM keys", keys.len())
            });
            active_keys.insert(name.to_owned(), keys);
        }
    }
    for (email, n) in &registered {
        v.check('d', *n == 1, || {
            format!("{email}: {n} sender.registered events")
        });
    }
    for i in finals.keys() {
        let email = &work.calls[*i].email;
        let n = registered.get(email).copied().unwrap_or(0);
        v.check('d', n == 1, || {
            format!("{email} (keyed, settled): {n} sender.registered events")
        });
    }
    for (i, answer) in succeeded {
        let call = &work.calls[*i];
        let stored = senders.get(&call.email);
        v.check(
            'c',
            stored.is_some_and(|s| s["domain"] == call.domain.as_str()),
            || {
                format!(
                    "{} answered {} but is not a sender",
                    call.email, answer.status
                )
            },
        );
        v.check('c', registered.contains_key(&call.email), || {
            format!(
                "{} answered {} but has no sender.registered event",
                call.email, answer.status
            )
        });
        // The DKIM record the client was told to publish is the domain's active key.
        let suffix = format!("._domainkey.{}", call.domain);
        let body = answer.json();
        let given = body
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.ends_with(&suffix)));
        let published = given.is_some_and(|(name, value)| {
            active_keys.get(&call.domain).is_some_and(|keys| {
                keys.iter()
                    .any(|k| k["record"]["name"] == name.as_str() && k["record"]["value"] == *value)
            })
        });
        v.check('c', published, || {
            format!(
                "{}: the DKIM record of its {} is not the domain's active key",
                call.email, answer.status
            )
        });
    }
}

/// Whether the service is ready again (`/readyz` 200) within 15 s of the fault's end.
fn recovers(app: &TestApp) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get("/readyz").map(|a| a.status).unwrap_or(0) != 200 {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

#[derive(Debug, Clone, Copy)]
enum LinkFault {
    /// Nothing: the harness's own baseline, same load, same checks.
    None,
    Reset,
    Cut,
    Stall,
}

/// The burst on PostgreSQL through the proxy, `fault` injected at its first answer;
/// then the keyed retries and every check.
async fn link_fault(fault: LinkFault) {
    if postgres_url().is_none() {
        eprintln!(
            "SKIPPED: DOMAIN_API_TEST_POSTGRES_URL is not set; the {fault:?} fault needs \
             PostgreSQL (DOMAIN_API_REQUIRE_POSTGRES=1 makes this a failure)"
        );
        return;
    }
    let _alone = ONE_BURST_AT_A_TIME.lock().await;
    let timeout = STATEMENT_TIMEOUT_MS.to_string();
    let options = Options {
        env: vec![
            ("DOMAIN_API_DB_STATEMENT_TIMEOUT_MS".into(), timeout.clone()),
            ("DOMAIN_API_DB_WAIT_TIMEOUT_MS".into(), timeout),
            ("DOMAIN_API_IDEMPOTENCY_LEASE".into(), LEASE.into()),
        ],
    };
    let (app, proxy) = spawn_app_through_proxy(options).await;
    let work = Workload::prepare(&app, |i| i % 2 == 0);
    let client = Client::of(&app);

    let mut ready_in_stall = None;
    let (outcomes, (in_flight, links)) = burst(&client, &work, |progress| {
        progress.wait_for_answers(1);
        let at_fault = (progress.in_flight(), proxy.connections());
        match fault {
            LinkFault::None => {}
            LinkFault::Reset => proxy.reset(),
            LinkFault::Cut => {
                proxy.cut();
                std::thread::sleep(Duration::from_secs(1));
                proxy.restore();
            }
            LinkFault::Stall => {
                proxy.stall();
                // A probe during the stall: a load balancer must hear 503 in time.
                std::thread::sleep(Duration::from_secs(2));
                let asked = Instant::now();
                let status = app.get("/readyz").map_or(0, |a| a.status);
                ready_in_stall = Some((status, asked.elapsed()));
                std::thread::sleep(STALL.saturating_sub(asked.elapsed() + Duration::from_secs(2)));
                proxy.thaw();
            }
        }
        at_fault
    });

    let summary = format!(
        "{fault:?}: {in_flight} of {CALLS} calls in flight and {links} database \
         connections open at the fault; answers: {}; slowest {:.2?} (bound {BOUND:.1?})",
        tally(outcomes.iter()),
        outcomes.iter().map(|o| o.elapsed).max().unwrap_or_default(),
    );
    eprintln!("faults: {summary}");
    let mut violations = Violations::default();
    for (call, outcome) in work.calls.iter().zip(&outcomes) {
        violations.check_outcome(&call.email, outcome, Some(BOUND));
    }
    if let Some((status, took)) = ready_in_stall {
        // 1 s by the service, plus scheduling (as in BOUND); held to the thaw it
        // would take the rest of the stall.
        violations.check('r', status == 503 && took < READY_BOUND, || {
            format!("/readyz during the stall answered {status} after {took:.2?} (bound {READY_BOUND:?})")
        });
    }
    let (finals, succeeded) = settle_keyed(&client, &work, &outcomes, Some(BOUND), &mut violations);
    check_keyed_finals(&work, &finals, &mut violations);
    if !recovers(&app) {
        violations.check('r', false, || "not ready 15 s after the fault ended".into());
        violations.assert_none(&summary, &[&app]);
    }
    check_stored(&app, &work, &finals, &succeeded, &mut violations);
    violations.assert_none(&summary, &[&app]);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_fault_the_burst_keeps_the_bound_and_the_invariants_on_postgres() {
    link_fault(LinkFault::None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_of_the_database_link_keeps_the_bound_and_the_invariants_on_postgres() {
    link_fault(LinkFault::Reset).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_of_the_database_link_for_a_second_keeps_the_bound_and_the_invariants_on_postgres() {
    link_fault(LinkFault::Cut).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stall_of_the_database_link_for_9_s_keeps_the_bound_and_the_invariants_on_postgres() {
    link_fault(LinkFault::Stall).await;
}

/// SIGKILL once a quarter of the burst is answered, on SQLite; a restart on the same database;
/// each keyed call that got no answer (or a 5xx) retried on the new process.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_64_keyed_registrations_in_flight_then_retries_replay_or_run_once() {
    let _alone = ONE_BURST_AT_A_TIME.lock().await;
    let options = Options {
        env: vec![("DOMAIN_API_IDEMPOTENCY_LEASE".into(), LEASE.into())],
    };
    let mut app = spawn_app_with(BackendKind::Sqlite, options).await;
    let work = Workload::prepare(&app, |_| true);
    let client = Client::of(&app);

    let (outcomes, in_flight) = burst(&client, &work, |progress| {
        // Keyed writes take turns on SQLite: with a quarter answered, one is being
        // written and the rest wait.
        progress.wait_for_answers(CALLS / 4);
        let in_flight = progress.in_flight();
        app.kill();
        in_flight
    });
    let summary = format!(
        "kill -9: {in_flight} of {CALLS} keyed calls in flight at the kill; answers: {}",
        tally(outcomes.iter()),
    );
    eprintln!("faults: {summary}");
    let restarted = spawn_sibling(&app);
    let client = Client::of(&restarted);

    let mut violations = Violations::default();
    for (call, outcome) in work.calls.iter().zip(&outcomes) {
        violations.check_outcome(&call.email, outcome, None);
    }
    let (finals, succeeded) = settle_keyed(&client, &work, &outcomes, None, &mut violations);
    check_keyed_finals(&work, &finals, &mut violations);
    check_stored(&restarted, &work, &finals, &succeeded, &mut violations);
    violations.assert_none(&summary, &[&app, &restarted]);
}
