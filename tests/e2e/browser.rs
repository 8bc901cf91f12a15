//! A small W3C WebDriver client (ureq + serde_json) for the Setup page's browser
//! tests: chromedriver on a free 127.0.0.1 port, headless Chromium, and the few
//! commands the tests need — navigation, scripts, keys, Chrome DevTools commands,
//! the browser log and screenshots. Chromedriver and the browser end on drop.
//!
//! Without `chromium` and `chromedriver` the browser tests print a loud skip line
//! and pass, unless `DOMAIN_API_REQUIRE_BROWSER=1` (CI) makes that a failure.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const REQUIRE_BROWSER_VAR: &str = "DOMAIN_API_REQUIRE_BROWSER";

/// The WebDriver key codes the tests press.
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const SPACE: &str = " ";
pub const SHIFT: &str = "\u{E008}";

/// One headless Chromium session behind its own chromedriver.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    /// Where downloads land.
    pub downloads: tempfile::TempDir,
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// A new browser, or `None` (after a loud line on stderr) when Chromium or
    /// chromedriver is not installed and `DOMAIN_API_REQUIRE_BROWSER` is not `1`.
    ///
    /// # Panics
    /// When the browser is required but missing, or does not start.
    pub fn start() -> Option<Self> {
        let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = on_path(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let required = std::env::var(REQUIRE_BROWSER_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{REQUIRE_BROWSER_VAR}=1 but chromium or chromedriver is not on PATH (apt-get install -y chromium chromium-driver)"
            );
            // Straight to the process's stderr: the test harness captures `eprintln!` of
            // a passing test, and this line must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED: the Setup page's browser tests need chromium and chromedriver \
                 (apt-get install -y chromium chromium-driver); set {REQUIRE_BROWSER_VAR}=1 to make their absence a failure !!!!!\n"
            );
            return None;
        };
        Some(Self::launch(&chromium, &driver))
    }

    fn launch(chromium: &Path, driver: &Path) -> Self {
        // Port 0: chromedriver picks a free port and says which on stdout.
        let mut child = Command::new(driver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    let _ = sender.send(port);
                }
                // Keep draining, so chromedriver never blocks on a full pipe.
            }
        });
        // Generous: chromedriver starts in well under a second, but the end-to-end
        // suite runs its fault bursts (64 request threads) beside the browser tests
        // on two cores.
        let Ok(port) = receiver.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromedriver did not report its port within 60 s");
        };
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let downloads = tempfile::tempdir().expect("a downloads dir");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                    "--disable-extensions", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--remote-debugging-address=127.0.0.1",
                    "--window-size=1280,900", "--lang=en-US"
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false
                }
            },
            "timeouts": {"script": 60_000, "pageLoad": 60_000}
        }}});
        let mut browser = Self {
            driver: child,
            base,
            session: String::new(),
            agent,
            downloads,
        };
        let created = browser.send("POST", "/session", &capabilities);
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    /// One WebDriver command; the answer's `value`. Panics with the error WebDriver
    /// gave.
    fn send(&self, method: &str, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", "application/json");
        let request = if method == "GET" || method == "DELETE" {
            request.body(Vec::new())
        } else {
            request.body(serde_json::to_vec(body).expect("JSON"))
        }
        .expect("a request");
        let mut response = self.agent.run(request).expect("chromedriver answers");
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .expect("a body");
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON from chromedriver ({e}): {text}"));
        assert!(
            status == 200,
            "WebDriver {method} {path} failed ({status}): {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn session_send(&self, method: &str, path: &str, body: &Value) -> Value {
        self.send(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_send("POST", "/url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn run(&self, script: &str, args: &[Value]) -> Value {
        self.session_send(
            "POST",
            "/execute/sync",
            &json!({"script": script, "args": args}),
        )
    }

    /// Runs `script`, which calls its last argument with the result.
    pub fn run_async(&self, script: &str, args: &[Value]) -> Value {
        self.session_send(
            "POST",
            "/execute/async",
            &json!({"script": script, "args": args}),
        )
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: &Value) -> Value {
        self.session_send(
            "POST",
            "/goog/cdp/execute",
            &json!({"cmd": cmd, "params": params}),
        )
    }

    /// Grants a permission (e.g. `clipboard-read`) to the current page's origin.
    pub fn grant(&self, permission: &str) {
        self.session_send(
            "POST",
            "/permissions",
            &json!({"descriptor": {"name": permission}, "state": "granted"}),
        );
    }

    /// Presses and releases each key in turn, as a keyboard would.
    pub fn press(&self, keys: &[&str]) {
        let actions: Vec<Value> = keys
            .iter()
            .flat_map(|key| {
                [
                    json!({"type": "keyDown", "value": key}),
                    json!({"type": "keyUp", "value": key}),
                ]
            })
            .collect();
        self.session_send(
            "POST",
            "/actions",
            &json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// Shift+Tab.
    pub fn press_shift_tab(&self) {
        let actions = json!([
            {"type": "keyDown", "value": SHIFT},
            {"type": "keyDown", "value": TAB},
            {"type": "keyUp", "value": TAB},
            {"type": "keyUp", "value": SHIFT},
        ]);
        self.session_send(
            "POST",
            "/actions",
            &json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// Clicks the element `selector` finds, as a mouse would (WebDriver scrolls it
    /// into view and refuses a hidden or covered one).
    pub fn click(&self, selector: &str) {
        let found = self.session_send(
            "POST",
            "/element",
            &json!({"using": "css selector", "value": selector}),
        );
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_owned();
        self.session_send("POST", &format!("/element/{id}/click"), &json!({}));
    }

    /// Polls `script` (a function body returning a value) until it returns true.
    pub fn wait_for(&self, what: &str, script: &str, args: &[Value]) {
        let started = Instant::now();
        loop {
            if self.run(script, args) == Value::Bool(true) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; page text:\n{}",
                self.run("return document.body.innerText;", &[])
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The browser's console and network log since the last call.
    pub fn log(&self) -> Vec<Value> {
        self.session_send("POST", "/se/log", &json!({"type": "browser"}))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Emulates a viewport of `width` × `height` CSS pixels.
    pub fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            &json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// The whole page (not only the viewport) as PNG bytes.
    pub fn screenshot_full_page(&self) -> Vec<u8> {
        use base64::Engine as _;
        let size = self.run(
            "return [document.documentElement.clientWidth, document.documentElement.scrollHeight];",
            &[],
        );
        let shot = self.cdp(
            "Page.captureScreenshot",
            &json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG")
    }

    /// Lets downloads land in [`Browser::downloads`] without asking.
    pub fn allow_downloads(&self) {
        self.cdp(
            "Browser.setDownloadBehavior",
            &json!({"behavior": "allow", "downloadPath": self.downloads.path().display().to_string()}),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Ends the browser; chromedriver itself is killed below.
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
