//! The Domain Setup page in a real browser (headless Chromium over WebDriver, see
//! `browser.rs`) against the real binary and the in-process DNS server: the records
//! listed, copy, "Check now" turning rows from missing to published, the merged SPF
//! of a Google Workspace domain, the inbound toggle with and without the MX, the zone
//! file download, keyboard only, a phone-sized viewport, no console errors, and axe-core
//! (vendored) finding no serious or critical violation. Also over plain HTTP: the
//! security headers and the frame-ancestors setting.
//!
//! `DOMAIN_API_SCREENSHOTS=<dir>` saves the page's screenshots there
//! (`scripts/screenshots.sh` refreshes `docs/screenshots/`).

use std::time::{Duration, Instant};

use dns_hickory::test_support::TestDnsServer;
use serde_json::{Value, json};
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::browser::{Browser, ENTER, SPACE, TAB};
use crate::helpers::{Org, TestApp};
use crate::lifecycle::{app_with, detail, jwt, publish_generated};

/// axe-core 4.14.1 (MPL-2.0), `npm pack axe-core`; see vendor/axe-core/VERSION.
const AXE: &str = include_str!("vendor/axe-core/axe.min.js");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Setup {
    dns: TestDnsServer,
    app: TestApp,
    org: Org,
    token: String,
}

async fn setup(kind: BackendKind) -> Setup {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("setup-page");
    let token = jwt(&app, &org);
    Setup {
        dns,
        app,
        org,
        token,
    }
}

impl Setup {
    fn generate(&self, domain: &str) -> Value {
        let answer = self
            .app
            .generate(&self.org, &format!(r#"{{"email":"hello@{domain}"}}"#));
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.json()
    }

    fn page(&self, domain: &str) -> String {
        self.app
            .url(&format!("/setup/{domain}#token={}", self.token))
    }
}

/// Each record row as the page shows it.
pub(crate) fn rows(browser: &Browser) -> Vec<Value> {
    browser
        .run(
            "return [...document.querySelectorAll('#records > li')].map(li => ({
                name: li.dataset.recordName,
                kind: li.dataset.kind,
                status: li.querySelector('.badge').dataset.status,
                badge: li.querySelector('.badge').textContent,
                reason: li.querySelector('.reason').hidden ? null : li.querySelector('.reason').textContent,
                host: li.querySelector('code.host').textContent,
                fullName: li.querySelector('code.name').textContent,
                value: li.querySelector('.fields code.value').textContent,
                strings: [...li.querySelectorAll('.strings code')].map(c => c.textContent),
                copyLabels: [...li.querySelectorAll('button.copy')].map(b => b.textContent),
            }));",
            &[],
        )
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn statuses(browser: &Browser) -> Vec<String> {
    rows(browser)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn wait_loaded(browser: &Browser) {
    browser.wait_for(
        "the records",
        "return !document.getElementById('app').hidden && document.querySelectorAll('#records > li').length > 0;",
        &[],
    );
}

fn wait_idle(browser: &Browser) {
    browser.wait_for(
        "the action to finish",
        "return !document.querySelector('[aria-disabled=\"true\"]');",
        &[],
    );
}

/// axe-core's serious and critical violations on the page as it is now.
fn axe_violations(browser: &Browser) -> Vec<Value> {
    browser.run(&format!("{AXE}\n;return typeof axe;"), &[]);
    let found = browser.run_async(
        "const done = arguments[arguments.length - 1];
         axe.run(document)
           .then(r => done({passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact,
                 help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))}))
           .catch(e => done({passes: 0, violations: [{id: 'axe-failed', impact: 'critical', help: String(e)}]}));",
        &[],
    );
    // axe really looked at the page: it checked rules and some passed.
    assert!(found["passes"].as_u64().unwrap() >= 10, "{found}");
    found["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
        .cloned()
        .collect()
}

fn assert_accessible(browser: &Browser, when: &str) {
    let violations = axe_violations(browser);
    assert!(
        violations.is_empty(),
        "axe found serious or critical violations {when}: {violations:#?}"
    );
}

/// The browser log holds no error but `allowed` ones (e.g. the expected 409);
/// returns the allowed ones. The page's Domain Connect question (`…/connect`) is
/// answered 404 wherever the domain's DNS provider does not support it, as in these
/// tests, and the browser logs every 404: that one is never counted.
pub(crate) fn assert_no_console_errors(
    browser: &Browser,
    allowed: impl Fn(&str) -> bool,
) -> Vec<Value> {
    let (allowed, errors): (Vec<Value>, Vec<Value>) = browser
        .log()
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .filter(|entry| {
            let message = entry["message"].as_str().unwrap_or_default();
            !(message.contains("/connect ") && message.contains("404"))
        })
        .partition(|entry| allowed(entry["message"].as_str().unwrap_or_default()));
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    allowed
}

/// At 390 × 844 the page never scrolls sideways.
fn assert_fits_a_phone(browser: &Browser, when: &str) {
    browser.viewport(390, 844, true);
    let widths = browser.run(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
        &[],
    );
    assert!(
        widths[0].as_u64().unwrap() <= widths[1].as_u64().unwrap(),
        "horizontal scrolling at 390 px {when}: {widths}"
    );
    assert_eq!(widths[1], 390, "{when}");
}

/// Saves the page at desktop and phone size when `DOMAIN_API_SCREENSHOTS` is set.
fn screenshots(browser: &Browser, name: &str) {
    let Some(dir) = std::env::var_os("DOMAIN_API_SCREENSHOTS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (size, width, height, mobile) in [("desktop", 1280, 900, false), ("phone", 390, 844, true)]
    {
        browser.viewport(width, height, mobile);
        // The screenshot shows the page as it is, not the keyboard focus of a test step.
        browser.run(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
            &[],
        );
        let png = browser.screenshot_full_page();
        std::fs::write(dir.join(format!("setup-{name}-{size}.png")), png).unwrap();
    }
    browser.viewport(1280, 900, false);
}

/// Moves the keyboard focus with Tab (or Shift+Tab, when the target comes before
/// the focus) until `predicate` (an expression over `el`) holds for it.
fn tab_to(browser: &Browser, what: &str, predicate: &str) {
    let check = format!("const el = document.activeElement; return !!el && ({predicate});");
    // From no focus, Tab would start wherever the focus was last: start at the top.
    let forward = browser.run(
        &format!(
            "const target = [...document.querySelectorAll('a[href], button, summary')].find(el => ({predicate}));
             if (!target) return null;
             const from = document.activeElement;
             if (!from || from === document.body) {{
               document.querySelector('a[href], button, summary').focus();
               return true;
             }}
             return !!(from.compareDocumentPosition(target) & Node.DOCUMENT_POSITION_FOLLOWING);"
        ),
        &[],
    );
    assert!(!forward.is_null(), "no element is {what}");
    for _ in 0..200 {
        if browser.run(&check, &[]) == Value::Bool(true) {
            return;
        }
        if forward == Value::Bool(true) {
            browser.press(&[TAB]);
        } else {
            browser.press_shift_tab();
        }
    }
    panic!("the keyboard never reached {what}");
}

/// Writes `sentinel`, so a later read proves that the page wrote something.
fn reset_clipboard(browser: &Browser) {
    let wrote = browser.run_async(
        "const done = arguments[arguments.length - 1];
         navigator.clipboard.writeText('sentinel').then(() => done('ok'), e => done(String(e)));",
        &[],
    );
    assert_eq!(wrote, "ok");
}

fn clipboard(browser: &Browser) -> String {
    browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             navigator.clipboard.readText().then(done, e => done('clipboard error: ' + e));",
            &[],
        )
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every visible focusable element is reached with Tab, in order, with a visible
/// focus ring; returns how many there were.
fn assert_all_reachable_by_tab(browser: &Browser) -> usize {
    let total = browser
        .run(
            "const all = [...document.querySelectorAll('a[href], button, summary, input, select, textarea, [tabindex]')]
               .filter(el => el.tabIndex >= 0 && el.getClientRects().length > 0 && !el.closest('[hidden]'));
             all.forEach((el, i) => el.dataset.focusIndex = i);
             document.activeElement && document.activeElement.blur();
             return all.length;",
            &[],
        )
        .as_u64()
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..total + 5 {
        browser.press(&[TAB]);
        let focused = browser.run(
            "const el = document.activeElement;
             if (!el || el === document.body || el.dataset.focusIndex === undefined) return null;
             const style = getComputedStyle(el);
             return {index: Number(el.dataset.focusIndex), ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
                     label: el.textContent.trim().slice(0, 60)};",
            &[],
        );
        if focused.is_null() {
            break;
        }
        assert_eq!(
            focused["ring"], true,
            "no visible focus ring on {}",
            focused["label"]
        );
        let index = focused["index"].as_u64().unwrap();
        if seen.contains(&index) {
            break;
        }
        seen.push(index);
    }
    let expected: Vec<u64> = (0..total).collect();
    assert_eq!(seen, expected, "Tab order skipped elements");
    // Past the last element Tab leaves the document (for the browser's own UI); the
    // next Tab brings the focus back, as it would for a person.
    for _ in 0..5 {
        if browser.run("return document.hasFocus();", &[]) == Value::Bool(true) {
            break;
        }
        browser.press(&[TAB]);
    }
    usize::try_from(total).unwrap()
}

pub(crate) fn wait_for_file(path: &std::path::Path) -> String {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no download at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn walk_through(kind: BackendKind, browser: &Browser) {
    let s = setup(kind).await;
    let domain = "setup-page.example";
    let generated = s.generate(domain);
    let expected = detail(&s.app, &s.org, domain).json();
    let records = expected["records"].as_array().unwrap();
    let dkim = &records[1];

    browser.viewport(1280, 900, false);
    browser.goto(&s.page(domain));
    wait_loaded(browser);

    // The token is read, then gone from the address bar (and from the history entry).
    let href = browser.run("return location.href;", &[]);
    assert_eq!(href, s.app.url(&format!("/setup/{domain}")), "{kind:?}");
    let page_text = browser.run("return document.documentElement.outerHTML;", &[]);
    assert!(!page_text.as_str().unwrap().contains(&s.token));

    // Every record with its host, full name, value, strings and a labelled copy button.
    let shown = rows(browser);
    assert_eq!(shown.len(), 3, "{shown:#?}");
    let kinds: Vec<&str> = shown.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SPF", "DKIM", "DMARC"]);
    for (row, record) in shown.iter().zip(records) {
        assert_eq!(row["name"], record["name"]);
        assert_eq!(row["host"], record["host"]);
        assert_eq!(row["fullName"], record["name"]);
        assert_eq!(row["value"], record["value"]);
        assert_eq!(row["status"], "unchecked");
        let kind = row["kind"].as_str().unwrap();
        for label in row["copyLabels"].as_array().unwrap() {
            assert!(
                label.as_str().unwrap().contains(&format!("{kind} record")),
                "a copy button that does not say which record: {label}"
            );
        }
    }
    assert_eq!(shown[1]["strings"], dkim["strings"]);
    assert_eq!(shown[1]["strings"].as_array().unwrap().len(), 2);
    assert_eq!(
        shown[1]["value"],
        generated
            .as_object()
            .unwrap()
            .iter()
            .nth(1)
            .unwrap()
            .1
            .clone()
    );
    assert_eq!(
        browser.run(
            "return document.getElementById('domain-status').textContent;",
            &[]
        ),
        "Pending"
    );
    assert_accessible(browser, "on load");
    assert_fits_a_phone(browser, "on load");
    browser.viewport(1280, 900, false);
    if kind == BackendKind::Sqlite {
        screenshots(browser, "before");
    }

    // Keyboard only: every control is reached with Tab and shows its focus.
    let controls = assert_all_reachable_by_tab(browser);
    assert!(controls >= 3 * 2 + 4, "only {controls} focusable elements");

    // Copy the DKIM value with the keyboard: the clipboard holds it exactly.
    browser.grant("clipboard-read");
    browser.grant("clipboard-write");
    reset_clipboard(browser);
    browser.run(
        "document.activeElement && document.activeElement.blur();",
        &[],
    );
    tab_to(
        browser,
        "the DKIM value's copy button",
        "el.textContent === 'Copy value of the DKIM record'",
    );
    browser.press(&[ENTER]);
    browser.wait_for(
        "the copy to be confirmed",
        "return document.getElementById('live').textContent === 'Copied the value of the DKIM record to the clipboard.';",
        &[],
    );
    assert_eq!(clipboard(browser), dkim["value"].as_str().unwrap());
    // And its two strings, quoted, for providers such as Route 53.
    tab_to(
        browser,
        "the quoted strings' copy button",
        "el.textContent === 'Copy quoted strings of the DKIM record'",
    );
    browser.press(&[SPACE]);
    browser.wait_for(
        "the copy to be confirmed",
        "return document.getElementById('live').textContent.startsWith('Copied the DKIM record as quoted strings');",
        &[],
    );
    let strings = dkim["strings"].as_array().unwrap();
    assert_eq!(
        clipboard(browser),
        format!(
            "\"{}\" \"{}\"",
            strings[0].as_str().unwrap(),
            strings[1].as_str().unwrap()
        )
    );

    // "Check now" with nothing published: every row missing, with its reason.
    tab_to(browser, "Check now", "el.id === 'check'");
    browser.press(&[ENTER]);
    browser.wait_for(
        "the check",
        "return !document.getElementById('check-summary').hidden;",
        &[],
    );
    wait_idle(browser);
    assert_eq!(
        statuses(browser),
        ["missing", "missing", "missing"],
        "{kind:?}"
    );
    for row in rows(browser) {
        assert!(
            row["reason"]
                .as_str()
                .unwrap()
                .starts_with("No TXT record found at"),
            "{row}"
        );
    }
    browser.wait_for(
        "the summary announced",
        "return document.getElementById('live').textContent === arguments[0];",
        &[json!("Checked: 0 of 3 records are published correctly. See each record below for what to fix.")],
    );
    assert_accessible(browser, "with every record missing");
    assert_fits_a_phone(browser, "with every record missing");
    browser.viewport(1280, 900, false);

    // Inbound without the MX: refused, and the page says what is missing.
    tab_to(browser, "the inbound switch", "el.id === 'inbound'");
    browser.press(&[SPACE]);
    browser.wait_for(
        "the inbound answer",
        "return !document.getElementById('inbound-message').hidden;",
        &[],
    );
    wait_idle(browser);
    assert_eq!(
        browser.run(
            "return document.getElementById('inbound-message').textContent;",
            &[]
        ),
        "Inbound requires an MX record pointing at inbound.sendtrim.com or smtp.sendtrim.com. Publish that MX record at your DNS provider, then turn inbound mail on again."
    );
    assert_eq!(
        browser.run(
            "return document.getElementById('inbound').getAttribute('aria-checked');",
            &[]
        ),
        "false"
    );
    assert_eq!(
        detail(&s.app, &s.org, domain).json()["inboundEnabled"],
        false
    );

    // The customer publishes everything, MX included: "Check now" turns every row to
    // published and the domain to verified; now inbound can be turned on.
    publish_generated(&s.dns, domain, &generated);
    s.dns.add_mx(domain, 10, "inbound.sendtrim.com");
    browser.click("#check");
    browser.wait_for(
        "every record published",
        "return [...document.querySelectorAll('#records .badge')].every(b => b.dataset.status === 'ok');",
        &[],
    );
    wait_idle(browser);
    assert_eq!(statuses(browser), ["ok", "ok", "ok"]);
    assert_eq!(
        browser.run(
            "return document.getElementById('domain-status').textContent;",
            &[]
        ),
        "Verified"
    );
    assert_eq!(
        browser.run(
            "return document.getElementById('check-summary').textContent;",
            &[]
        ),
        "Checked: all 3 records are published correctly."
    );
    browser.click("#inbound");
    browser.wait_for(
        "inbound on",
        "return document.getElementById('inbound').getAttribute('aria-checked') === 'true';",
        &[],
    );
    wait_idle(browser);
    assert_eq!(
        browser.run(
            "return document.getElementById('inbound-message').textContent;",
            &[]
        ),
        "Inbound mail is on."
    );
    let after = detail(&s.app, &s.org, domain).json();
    assert_eq!(after["inboundEnabled"], true);
    assert_eq!(after["status"], "verified");
    assert_accessible(browser, "with every record published");
    assert_fits_a_phone(browser, "with every record published");
    browser.viewport(1280, 900, false);
    if kind == BackendKind::Sqlite {
        screenshots(browser, "after");
    }

    // The zone file downloads with the JWT: the same lines the API serves.
    // (The browser serves every backend: a file of an earlier run would be kept and
    // the new one renamed.)
    let download = browser.downloads.path().join(format!("{domain}.zone"));
    let _ = std::fs::remove_file(&download);
    browser.allow_downloads();
    browser.click("#zone");
    let file = wait_for_file(&download);
    let bearer = format!("Bearer {}", s.token);
    let zone = s.app.request(
        "GET",
        &format!("/api/v1/emails/domains/{domain}/zone"),
        &[("Authorization", bearer.as_str())],
        b"",
    );
    assert_eq!(file, zone.body);

    // No error in the console but the refused PATCH (the browser logs every 409).
    let patch = format!(
        "/api/v1/emails/domains/{domain} - Failed to load resource: the server responded with a status of 409"
    );
    let refused = assert_no_console_errors(browser, |message| message.contains(&patch));
    // The log is really read: the refused PATCH is in it, once.
    assert_eq!(refused.len(), 1, "{refused:#?}");
    // The token never reached the server's log.
    assert!(
        !s.app.log().contains(&s.token),
        "the JWT is in the server log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_publishes_checks_copies_and_turns_inbound_on_by_keyboard_on_every_backend() {
    let Some(browser) = Browser::start() else {
        return;
    };
    for kind in backends() {
        walk_through(kind, &browser).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_google_workspace_domain_is_shown_one_merged_spf_record() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let s = setup(BackendKind::Sqlite).await;
    let domain = "workspace-setup.example";
    let generated = s.generate(domain);
    let ours = generated["SPF"].as_str().unwrap();
    s.dns
        .add_txt_value(domain, "v=spf1 include:_spf.google.com ~all");
    s.dns.add_txt_value(
        "_spf.google.com",
        "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com ~all",
    );
    s.dns
        .add_txt_value("_netblocks.google.com", "v=spf1 ip4:35.190.247.0/24 ~all");
    s.dns.add_txt_value(
        "_netblocks2.google.com",
        "v=spf1 ip6:2001:4860:4000::/36 ~all",
    );
    let theirs = "v=DMARC1; p=quarantine; rua=mailto:reports@workspace-setup.example";
    s.dns.add_txt_value(&format!("_dmarc.{domain}"), theirs);

    browser.goto(&s.page(domain));
    wait_loaded(&browser);
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('[data-changeset]').length;",
            &[]
        ),
        0,
        "no change-set before a check"
    );
    browser.click("#check");
    browser.wait_for(
        "the change-set",
        "return !!document.querySelector('[data-changeset=\"spf\"]');",
        &[],
    );
    wait_idle(&browser);
    let merged = format!(
        "v=spf1 include:_spf.google.com {} ~all",
        ours.trim_start_matches("v=spf1 ").trim_end_matches(" -all")
    );
    let shown = browser.run(
        "const box = document.querySelector('[data-changeset=\"spf\"]');
         return {existing: [...box.querySelectorAll('ul code')].map(c => c.textContent),
                 merged: box.querySelector('code.merged').textContent,
                 text: box.textContent,
                 dmarc: document.querySelector('[data-changeset=\"dmarc\"] code').textContent};",
        &[],
    );
    assert_eq!(
        shown["existing"],
        json!(["v=spf1 include:_spf.google.com ~all"])
    );
    assert_eq!(shown["merged"], merged.as_str());
    assert!(
        shown["text"]
            .as_str()
            .unwrap()
            .contains("It needs 3 of the 10 DNS lookups"),
        "{shown}"
    );
    assert_eq!(shown["dmarc"], theirs);
    screenshots(&browser, "merged-spf");

    // Its copy button copies the merged record, not ours.
    browser.grant("clipboard-read");
    browser.grant("clipboard-write");
    reset_clipboard(&browser);
    browser.click("[data-changeset=\"spf\"] button.copy");
    browser.wait_for(
        "the copy",
        "return document.getElementById('live').textContent === 'Copied the merged SPF value to the clipboard.';",
        &[],
    );
    assert_eq!(clipboard(&browser), merged);
    assert_accessible(&browser, "with the merged SPF");
    assert_fits_a_phone(&browser, "with the merged SPF");
    assert_no_console_errors(&browser, |_| false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pending_key_of_a_rotation_is_listed_with_what_to_do() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let s = setup(BackendKind::Sqlite).await;
    let domain = "rotation-setup.example";
    let generated = s.generate(domain);
    publish_generated(&s.dns, domain, &generated);
    assert_eq!(crate::lifecycle::rotate(&s.app, &s.org, domain).status, 202);
    let view = detail(&s.app, &s.org, domain).json();
    let pending = &view["dkim"][0];
    assert_eq!(pending["state"], "pending");

    browser.goto(&s.page(domain));
    wait_loaded(&browser);
    let shown = rows(&browser);
    let labels: Vec<String> = browser
        .run("return [...document.querySelectorAll('#records h3')].map(h => h.firstChild.textContent);", &[])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        labels,
        ["SPF", "DKIM, new key", "DKIM, current key", "DMARC"]
    );
    assert_eq!(shown[1]["value"], pending["record"]["value"]);
    let rotation = browser.run(
        "const p = document.getElementById('rotation'); return p.hidden ? null : p.textContent;",
        &[],
    );
    assert!(
        rotation.as_str().unwrap().contains(&format!(
            "selector {}",
            pending["selector"].as_str().unwrap()
        )),
        "{rotation}"
    );

    // Checked before the new key is published: the new key is "not seen yet".
    browser.click("#check");
    wait_idle(&browser);
    browser.wait_for(
        "the check",
        "return !document.getElementById('check-summary').hidden;",
        &[],
    );
    assert_eq!(statuses(&browser), ["ok", "missing", "ok", "ok"]);
    assert!(
        rows(&browser)[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not found in DNS yet")
    );
    assert_accessible(&browser, "during a rotation");
    assert_no_console_errors(&browser, |_| false);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_valid_link_the_page_says_what_to_do() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let s = setup(BackendKind::Sqlite).await;
    let domain = "links.example";
    s.generate(domain);
    let notice = |url: &str| {
        browser.goto(url);
        browser.wait_for(
            "the notice",
            "return !document.getElementById('notice').hidden;",
            &[],
        );
        assert_eq!(
            browser.run("return document.getElementById('app').hidden;", &[]),
            true
        );
        browser
            .run("return document.getElementById('notice').textContent;", &[])
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        notice(&s.app.url(&format!("/setup/{domain}")))
            .starts_with("This page needs a link from your dashboard."),
    );
    assert_accessible(&browser, "without a token");
    assert!(
        notice(&s.app.url(&format!("/setup/{domain}#token=not.a.jwt")))
            .starts_with("Your link has expired or is not valid."),
    );
    assert!(
        notice(&s.page("someone-else.example"))
            .starts_with("This domain was not found in your organization."),
    );
    // The API's 401 and 404 answers are logged as failed loads, nothing else.
    let answers = assert_no_console_errors(&browser, |m| {
        m.contains("the server responded with a status of 401")
            || m.contains("the server responded with a status of 404")
    });
    assert_eq!(answers.len(), 2, "{answers:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_carry_the_security_headers_and_framing_follows_the_setting() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(BackendKind::Sqlite, &dns, &[]).await;
    let page = app.get("/setup/example.com").unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let script_url = page
        .body
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let style_url = page
        .body
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    for (answer, cache) in [
        (page, "no-cache"),
        (
            app.get(&script_url).unwrap(),
            "public, max-age=31536000, immutable",
        ),
        (
            app.get(&style_url).unwrap(),
            "public, max-age=31536000, immutable",
        ),
    ] {
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-security-policy"), Some(CSP));
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(answer.header("x-frame-options"), Some("DENY"));
        assert_eq!(answer.header("cache-control"), Some(cache));
    }
    let bad = app.get("/setup/not_a_domain").unwrap();
    assert_eq!((bad.status, bad.body.as_str()), (404, "Not found"));

    let framed = app_with(
        BackendKind::Sqlite,
        &dns,
        &[(
            "DOMAIN_API_SETUP_FRAME_ANCESTORS",
            "https://dashboard.example.com, https://admin.example.com",
        )],
    )
    .await;
    let page = framed.get("/setup/example.com").unwrap();
    assert_eq!(
        page.header("content-security-policy"),
        Some(
            CSP.replace(
                "frame-ancestors 'none'",
                "frame-ancestors https://dashboard.example.com https://admin.example.com"
            )
            .as_str()
        )
    );
    assert_eq!(page.header("x-frame-options"), None);

    // A bad origin stops the binary at start with one line naming the variable.
    let (ok, _, stderr) = app.cli_with(
        &[(
            "DOMAIN_API_SETUP_FRAME_ANCESTORS",
            "https://dash.example.com/app",
        )],
        &["migrate"],
    );
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("DOMAIN_API_SETUP_FRAME_ANCESTORS"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_names_the_zone_the_hosts_are_relative_to() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let s = setup(BackendKind::Sqlite).await;
    let domain = "mail.gworkspace.example";
    s.dns.add_soa("gworkspace.example");
    let generated = s.generate(domain);
    let selector = generated
        .as_object()
        .unwrap()
        .keys()
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let zone_line = "return document.getElementById('records-zone').textContent;";

    browser.goto(&s.page(domain));
    wait_loaded(&browser);
    let hosts: Vec<Value> = rows(&browser).iter().map(|r| r["host"].clone()).collect();
    assert_eq!(
        hosts,
        [
            json!("mail"),
            json!(format!("{selector}._domainkey.mail")),
            json!("_dmarc.mail")
        ]
    );
    let before = browser.run(zone_line, &[]);
    let before = before.as_str().unwrap();
    assert!(
        before.contains("in the zone gworkspace.example"),
        "{before}"
    );
    assert!(
        before.contains("not been confirmed by a DNS lookup"),
        "{before}"
    );
    let ttl = browser.run(
        "return [...document.querySelectorAll('#records code.ttl')].map(c => c.textContent);",
        &[],
    );
    assert_eq!(ttl, json!(["3600", "3600", "3600"]));

    // "Check now" finds the SOA: the zone is confirmed.
    browser.click("#check");
    browser.wait_for(
        "the check",
        "return !document.getElementById('check-summary').hidden;",
        &[],
    );
    wait_idle(&browser);
    let after = browser.run(zone_line, &[]);
    let after = after.as_str().unwrap();
    assert!(after.contains("in the zone gworkspace.example"), "{after}");
    assert!(!after.contains("not been confirmed"), "{after}");
    assert_accessible(&browser, "with the zone named");
    assert_no_console_errors(&browser, |_| false);
}
