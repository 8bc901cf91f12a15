//! The seed endpoint over HTTP: the cURL example, reuse, and every error row.

use store_diesel::test_support::backends;

use crate::helpers::{Org, read_response, spawn_app};

/// The seed's cURL example body, byte for byte.
const SEED_BODY: &str = r#"{
"email": "noreply@example.com",
"replyTo": "support@example.com",
"inbound": false
}"#;

fn keys(json: &serde_json::Value) -> Vec<String> {
    json.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_curl_example_returns_201_and_the_three_records() {
    for kind in backends() {
        let app = spawn_app(kind).await;
        let org = app.create_org("Acme");

        let answer = app.generate(&org, SEED_BODY);

        assert_eq!(answer.status, 201, "{kind:?}: {}", answer.body);
        assert_eq!(answer.content_type, "application/json");
        let json = answer.json();
        let keys = keys(&json);
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[0], "SPF");
        assert_eq!(keys[2], "_dmarc");
        let dkim_name = &keys[1];
        let selector = dkim_name
            .strip_suffix("._domainkey.example.com")
            .expect("DKIM key name");
        assert!(
            !selector.is_empty()
                && selector
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(json["SPF"], "v=spf1 ip4:51.79.43.241 -all");
        let dkim = json[dkim_name].as_str().unwrap();
        assert!(
            dkim.starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhki"),
            "{dkim}"
        );
        assert_eq!(
            json["_dmarc"],
            "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
        );
        // Raw body order, not just the parsed map's.
        let spf_at = answer.body.find("\"SPF\"").unwrap();
        let dkim_at = answer.body.find(dkim_name.as_str()).unwrap();
        let dmarc_at = answer.body.find("\"_dmarc\"").unwrap();
        assert!(spf_at < dkim_at && dkim_at < dmarc_at, "{}", answer.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sender_on_the_same_domain_gets_the_same_records() {
    for kind in backends() {
        let app = spawn_app(kind).await;
        let org = app.create_org("Acme");
        let first = app.generate(&org, SEED_BODY);

        let second = app.generate(&org, r#"{"email": "billing@example.com"}"#);

        assert_eq!(second.status, 201, "{kind:?}: {}", second.body);
        assert_eq!(
            second.body, first.body,
            "{kind:?}: no new key for a reused domain"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn renders_subdomain_and_idn_senders() {
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    let org = app.create_org("Acme");

    let sub = app
        .generate(&org, r#"{"email": "noreply@mail.example.com"}"#)
        .json();
    let idn = app
        .generate(&org, r#"{"email": "noreply@bücher.example"}"#)
        .json();

    assert!(keys(&sub)[1].ends_with("._domainkey.mail.example.com"));
    assert_eq!(
        sub["_dmarc"],
        "v=DMARC1; p=none; rua=mailto:dmarc@mail.example.com"
    );
    assert!(keys(&idn)[1].ends_with("._domainkey.xn--bcher-kva.example"));
    assert_eq!(
        idn["_dmarc"],
        "v=DMARC1; p=none; rua=mailto:dmarc@xn--bcher-kva.example"
    );
}

fn text(answer: &crate::helpers::Answer) -> (u16, &str, &str) {
    (
        answer.status,
        answer.content_type.as_str(),
        answer.body.as_str(),
    )
}

const PLAIN: &str = "text/plain; charset=utf-8";

#[tokio::test(flavor = "multi_thread")]
async fn every_error_row_of_the_seed_answers_exactly() {
    for kind in backends() {
        let app = spawn_app(kind).await;
        let acme = app.create_org("Acme");
        let other = app.create_org("Other");
        assert_eq!(app.generate(&acme, SEED_BODY).status, 201);
        let path = "/api/v1/emails/domains/generate";
        let json = ("Content-Type", "application/json");

        // 401 Missing: no headers, one header, a blank header.
        let none = app.request("POST", path, &[json], SEED_BODY.as_bytes());
        assert_eq!(
            text(&none),
            (401, PLAIN, "Missing API credentials"),
            "{kind:?}"
        );
        let one = app.request(
            "POST",
            path,
            &[json, ("X-Api-Access-Token", &acme.access)],
            SEED_BODY.as_bytes(),
        );
        assert_eq!(text(&one), (401, PLAIN, "Missing API credentials"));
        let blank = app.request(
            "POST",
            path,
            &[
                json,
                ("X-Api-Access-Token", &acme.access),
                ("X-Api-Secret-Token", " "),
            ],
            SEED_BODY.as_bytes(),
        );
        assert_eq!(text(&blank), (401, PLAIN, "Missing API credentials"));

        // 401 Invalid: tokens that match nothing, or a secret from another org.
        let wrong = Org {
            id: String::new(),
            access: acme.access.clone(),
            secret: other.secret.clone(),
        };
        assert_eq!(
            text(&app.generate(&wrong, SEED_BODY)),
            (401, PLAIN, "Invalid API credentials")
        );

        // 400: missing, malformed, padded sender; bad reply-to.
        assert_eq!(
            text(&app.generate(&acme, "{}")),
            (400, PLAIN, "Invalid sender address: ")
        );
        assert_eq!(
            text(&app.generate(&acme, r#"{"email":"bob@"}"#)),
            (400, PLAIN, "Invalid sender address: bob@")
        );
        assert_eq!(
            text(&app.generate(&acme, r#"{"email":" a@example.com"}"#)),
            (400, PLAIN, "Invalid sender address:  a@example.com")
        );
        assert_eq!(
            text(&app.generate(&acme, r#"{"email":"x@example.com","replyTo":"nope"}"#)),
            (400, PLAIN, "Invalid reply-to address: nope")
        );

        // 409: another org's domain; an existing email (any case).
        assert_eq!(
            text(&app.generate(&other, r#"{"email":"someone@example.com"}"#)),
            (409, PLAIN, "Domain is already taken")
        );
        assert_eq!(
            text(&app.generate(&acme, r#"{"email":"NoReply@Example.com"}"#)),
            (409, PLAIN, "Email is already taken")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_run_in_the_seed_order() {
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    let acme = app.create_org("Acme");
    let other = app.create_org("Other");
    assert_eq!(app.generate(&acme, SEED_BODY).status, 201);
    let bad = Org {
        id: String::new(),
        access: "dak_x".into(),
        secret: "das_y".into(),
    };

    // 401 before 400, even for a body that is not JSON at all.
    assert_eq!(app.generate(&bad, r#"{"email":"bob@"}"#).status, 401);
    assert_eq!(app.generate(&bad, "not json").status, 401);
    // 400 before 409.
    assert_eq!(
        app.generate(&other, r#"{"email":"noreply@example.com","replyTo":"x"}"#)
            .status,
        400
    );
    // 409 domain before 409 email: the email exists, but on a domain that is not ours.
    assert_eq!(
        app.generate(&other, SEED_BODY).body,
        "Domain is already taken"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_outside_the_seed_get_clear_short_answers() {
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    let org = app.create_org("Acme");
    let path = "/api/v1/emails/domains/generate";
    let auth = [
        ("X-Api-Access-Token", org.access.as_str()),
        ("X-Api-Secret-Token", org.secret.as_str()),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut headers: Vec<(&str, &str)> = auth.to_vec();
        headers.extend_from_slice(extra);
        headers
    };

    let malformed = app.request(
        "POST",
        path,
        &with(&[("Content-Type", "application/json")]),
        b"{\"email\":",
    );
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body.starts_with("Malformed JSON body"),
        "{}",
        malformed.body
    );
    assert_eq!(malformed.content_type, PLAIN);

    let not_object = app.request(
        "POST",
        path,
        &with(&[("Content-Type", "application/json")]),
        b"[1,2]",
    );
    assert_eq!(not_object.status, 400);

    let wrong_type = app.request(
        "POST",
        path,
        &with(&[("Content-Type", "text/plain")]),
        SEED_BODY.as_bytes(),
    );
    assert_eq!(
        text(&wrong_type),
        (415, PLAIN, "Content-Type must be application/json")
    );

    let huge = format!(
        r#"{{"email":"a@example.com","pad":"{}"}}"#,
        "x".repeat(17 * 1024)
    );
    let too_large = app.request(
        "POST",
        path,
        &with(&[("Content-Type", "application/json")]),
        huge.as_bytes(),
    );
    assert_eq!(too_large.status, 413);

    let bad_inbound = app.generate(&org, r#"{"email":"a@example.com","inbound":"yes"}"#);
    assert_eq!(
        text(&bad_inbound),
        (400, PLAIN, "Invalid inbound flag: expected true or false")
    );

    let unknown_fields = app.generate(&org, r#"{"email":"a@example.com","color":"blue"}"#);
    assert_eq!(unknown_fields.status, 201, "unknown fields are ignored");

    let crlf = app.generate(&org, r#"{"email":"a\r\nBcc: x@example.com"}"#);
    assert_eq!(crlf.status, 400);
    assert!(
        !crlf.body.contains('\n'),
        "control characters are escaped in the echo"
    );

    assert_eq!(
        text(&app.request("GET", "/nope", &[], b"")),
        (404, PLAIN, "Not found")
    );
    let wrong_method = app.request("GET", path, &[], b"");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("POST"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_is_rejected() {
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    let org = app.create_org("Acme");
    let (ok, _, stderr) = app.cli(&["token", "revoke", "--access-token", &org.access]);
    assert!(ok, "{stderr}");

    assert_eq!(
        app.generate(&org, SEED_BODY).body,
        "Invalid API credentials"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_by_the_cli_stops_working_once_the_token_cache_ttl_has_passed() {
    for kind in backends() {
        let app = crate::helpers::spawn_app_with(
            kind,
            crate::helpers::Options {
                env: vec![("DOMAIN_API_TOKEN_CACHE_TTL".to_owned(), "1s".to_owned())],
            },
        )
        .await;
        let org = app.create_org("Acme");
        // Used, so the instance has it cached; then revoked by another process.
        assert_eq!(app.generate(&org, SEED_BODY).status, 201, "{kind:?}");
        let (ok, _, stderr) = app.cli(&["token", "revoke", "--access-token", &org.access]);
        assert!(ok, "{stderr}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let rejected = app.generate(&org, SEED_BODY);
        assert_eq!(
            (rejected.status, rejected.body.as_str()),
            (401, "Invalid API credentials"),
            "{kind:?}: the bound is the TTL"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_call_keeps_the_connection_open() {
    use std::io::Write as _;
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    let org = app.create_org("Acme");
    let mut stream = std::net::TcpStream::connect(app.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let forged = org.with_forged_access().access;
    for (access, expected) in [
        (Some(forged.as_str()), "Invalid API credentials"),
        (None, "Missing API credentials"),
    ] {
        let token = access.map_or(String::new(), |a| {
            format!(
                "X-Api-Access-Token: {a}\r\nX-Api-Secret-Token: {}\r\n",
                org.secret
            )
        });
        // The head first, the body a moment later: the 401 is decided before the
        // body arrives, and must still leave the connection usable.
        write!(
            stream,
            "POST /api/v1/emails/domains/generate HTTP/1.1\r\nHost: test\r\n{token}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            SEED_BODY.len()
        )
        .unwrap();
        stream.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        stream.write_all(SEED_BODY.as_bytes()).unwrap();
        let (head, body) = read_response(&mut stream);
        assert!(head.starts_with("http/1.1 401"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(body, expected);
    }
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut stream);
    assert!(
        head.starts_with("http/1.1 200"),
        "the same connection serves on: {head}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_a_request_id() {
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    let minted = app.request("GET", "/healthz", &[], b"");
    assert_eq!(minted.header("x-request-id").map(str::len), Some(24));
    let kept = app.request("GET", "/healthz", &[("X-Request-Id", "abc-123")], b"");
    assert_eq!(kept.header("x-request-id"), Some("abc-123"));
}

/// A JSON body of exactly `len` bytes for `email`.
fn body_of_len(email: &str, len: usize) -> String {
    let frame = format!(r#"{{"email":"{email}","pad":""}}"#);
    let body = format!(
        r#"{{"email":"{email}","pad":"{}"}}"#,
        "x".repeat(len - frame.len())
    );
    assert_eq!(body.len(), len);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_limit_is_exactly_16_kib_and_the_content_type_is_checked_first() {
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    let org = app.create_org("Acme");
    let path = "/api/v1/emails/domains/generate";
    let headers = |content_type: &'static str| {
        vec![
            ("X-Api-Access-Token", org.access.clone()),
            ("X-Api-Secret-Token", org.secret.clone()),
            ("Content-Type", content_type.to_owned()),
        ]
    };
    let send = |content_type: &'static str, body: &str| {
        let owned = headers(content_type);
        let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.request("POST", path, &borrowed, body.as_bytes())
    };

    assert_eq!(
        send(
            "application/json",
            &body_of_len("a@limit.example", 16 * 1024)
        )
        .status,
        201
    );
    let over = send(
        "application/json",
        &body_of_len("b@limit.example", 16 * 1024 + 1),
    );
    assert_eq!(
        (over.status, over.body.as_str()),
        (413, "Request body is larger than 16384 bytes")
    );
    let over_and_wrong_type = send("text/plain", &body_of_len("c@limit.example", 64 * 1024));
    assert_eq!(over_and_wrong_type.status, 415);
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_answer_head_and_bearer_is_case_insensitive() {
    let app = spawn_app(store_diesel::BackendKind::Sqlite).await;
    assert_eq!(app.request("HEAD", "/healthz", &[], b"").status, 200);
    assert_eq!(app.request("HEAD", "/readyz", &[], b"").status, 200);
    let post = app.request("POST", "/healthz", &[], b"");
    assert_eq!(
        (post.status, post.header("allow")),
        (405, Some("GET, HEAD"))
    );
}
