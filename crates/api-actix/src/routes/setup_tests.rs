//! The Setup page's routes: the headers that make its CSP and framing rules hold,
//! domain validation, and the assets it is built from.

use actix_web::test::TestRequest;

use super::{PAGE, SCRIPT, version};
use crate::frame_ancestors::FrameAncestors;
use crate::routes::test_app::{Answer, Mocks, TEXT, call};

const STRICT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn get(uri: &str) -> Answer {
    call(Mocks::new().state(), TestRequest::get().uri(uri)).await
}

fn assert_secured(answer: &Answer) {
    assert_eq!(answer.header("content-security-policy"), Some(STRICT_CSP));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(answer.header("x-frame-options"), Some("DENY"));
}

#[tokio::test]
async fn the_page_is_served_without_credentials_under_the_strict_policy() {
    let answer = get("/setup/example.com").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.content_type, "text/html; charset=utf-8");
    assert_eq!(answer.header("cache-control"), Some("no-cache"));
    assert_secured(&answer);
    let v = version();
    assert!(answer.body.contains(&format!(
        r#"<script src="/setup/assets/setup.js?v={v}" defer></script>"#
    )));
    assert!(
        answer
            .body
            .contains(&format!("/setup/assets/setup.css?v={v}"))
    );
    assert!(!answer.body.contains("{{version}}"));
}

#[tokio::test]
async fn an_internationalised_domain_gets_the_page_too() {
    assert_eq!(get("/setup/b%C3%BCcher.example").await.status, 200);
    assert_eq!(get("/setup/xn--bcher-kva.example").await.status, 200);
}

#[tokio::test]
async fn a_path_that_is_no_domain_is_not_found_in_plain_text() {
    for uri in [
        "/setup/localhost",
        "/setup/not%20a%20domain",
        "/setup/1.2.3.4",
        "/setup/-bad-.example",
        "/setup/",
        "/setup/example.com/more",
    ] {
        let answer = get(uri).await;
        assert_eq!(answer.text(), (404, "Not found"), "{uri}");
        assert_eq!(answer.header("content-security-policy"), None, "{uri}");
    }
}

#[tokio::test]
async fn the_page_answers_get_only() {
    let answer = call(
        Mocks::new().state(),
        TestRequest::post().uri("/setup/example.com"),
    )
    .await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.allow.as_deref(), Some("GET"));
}

#[tokio::test]
async fn framing_follows_the_configured_origins() {
    let mut mocks = Mocks::new();
    mocks.frame_ancestors =
        FrameAncestors::parse("https://dash.example.com https://*.example.net").unwrap();
    let answer = call(mocks.state(), TestRequest::get().uri("/setup/example.com")).await;
    let csp = answer.header("content-security-policy").unwrap();
    assert!(
        csp.ends_with("; frame-ancestors https://dash.example.com https://*.example.net"),
        "{csp}"
    );
    assert_eq!(answer.header("x-frame-options"), None);

    let mut mocks = Mocks::new();
    mocks.frame_ancestors = FrameAncestors::parse("'self'").unwrap();
    let answer = call(mocks.state(), TestRequest::get().uri("/setup/example.com")).await;
    assert!(
        answer
            .header("content-security-policy")
            .unwrap()
            .ends_with("frame-ancestors 'self'")
    );
    assert_eq!(answer.header("x-frame-options"), Some("SAMEORIGIN"));
}

#[tokio::test]
async fn assets_have_their_types_and_the_same_headers() {
    for (file, content_type) in [
        ("setup.js", "text/javascript; charset=utf-8"),
        ("setup.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let answer = get(&format!("/setup/assets/{file}?v={}", version())).await;
        assert_eq!(answer.status, 200, "{file}");
        assert_eq!(answer.content_type, content_type);
        assert_secured(&answer);
        assert_eq!(
            answer.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{file}"
        );
    }
}

#[tokio::test]
async fn only_the_fingerprinted_url_is_cached_for_good() {
    for uri in [
        "/setup/assets/setup.js",
        "/setup/assets/setup.js?v=000000000000",
    ] {
        let answer = get(uri).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("cache-control"), Some("no-cache"), "{uri}");
    }
}

#[tokio::test]
async fn an_unknown_asset_is_not_found() {
    for uri in ["/setup/assets/other.js", "/setup/assets/..%2Fsetup.rs"] {
        assert_eq!(get(uri).await.text(), (404, "Not found"), "{uri}");
    }
    assert_eq!(TEXT, "text/plain; charset=utf-8");
}

/// The CSP forbids inline script and style, and data must never become markup.
#[test]
fn the_page_has_no_inline_script_or_style_and_the_script_writes_no_html() {
    let lower = PAGE.to_ascii_lowercase();
    for tag in lower.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or_default();
        assert!(open.contains(" src="), "inline script: <script{open}>");
        assert!(
            tag.split_once('>')
                .is_some_and(|(_, rest)| rest.starts_with("</script")),
            "a script with a body"
        );
    }
    assert!(!lower.contains("<style"), "an inline <style>");
    assert!(!lower.contains(" style="), "an inline style attribute");
    let handler = lower.match_indices(" on").find(|(at, _)| {
        let rest = &lower[at + 3..];
        let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name > 0 && rest[name..].starts_with('=')
    });
    assert_eq!(handler, None, "an inline event handler");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!SCRIPT.contains(sink), "setup.js uses {sink}");
    }
    for external in ["http://", "https://", "//cdn"] {
        assert!(!lower.contains(external), "an external asset: {external}");
    }
}
