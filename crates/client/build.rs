//! Generates the client from `docs/openapi.json` (the committed copy of the served
//! document) with progenitor. progenitor reads OpenAPI 3.0, the document is 3.1: the
//! few 3.1 spellings it uses are rewritten to their 3.0 equivalents first, without
//! changing what any schema admits (`type: [T, "null"]` → `type: T, nullable: true`).
//! progenitor also wants one type for all the error answers of an operation, while the
//! document has a sentence (`text/plain`) for 4xx and 503 and `{"error": …}` for 500:
//! in this client's view every error answer is raw bytes (`Error::ErrorResponse` with
//! the status and a byte stream holding the sentence or the JSON).

use std::path::Path;

use serde_json::{Value, json};

fn main() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).expect("docs/openapi.json is readable");
    let mut doc: Value = serde_json::from_str(&text).expect("docs/openapi.json is JSON");
    to_openapi_30(&mut doc);
    raw_errors(&mut doc);
    doc["openapi"] = json!("3.0.3");
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(doc).expect("the document reads as OpenAPI 3.0");
    let mut generator = progenitor::Generator::default();
    let tokens = generator
        .generate_tokens(&spec)
        .expect("progenitor generates the client");
    let file: syn::File = syn::parse2(tokens).expect("the generated client parses");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("client.rs");
    std::fs::write(out, prettyplease::unparse(&file)).expect("OUT_DIR is writable");
}

/// Rewrites, in place, the 3.1 forms the document uses into 3.0 ones.
/// Every error answer as raw bytes (see the module doc).
fn raw_errors(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                if status.starts_with('4') || status.starts_with('5') {
                    response["content"] = json!({"text/plain": {"schema": {"type": "string"}}});
                }
            }
        }
    }
}

fn to_openapi_30(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get("type").cloned() {
                let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if non_null.len() == 1 {
                    map.insert("type".into(), non_null[0].clone());
                    if non_null.len() < types.len() {
                        map.insert("nullable".into(), json!(true));
                    }
                }
            }
            // `oneOf: [{"type": "null"}, X]` is a nullable X.
            if let Some(Value::Array(options)) = map.get("oneOf").cloned() {
                let null = json!({"type": "null"});
                if options.len() == 2 && options.contains(&null) {
                    let other = options.into_iter().find(|o| *o != null).unwrap_or_default();
                    map.remove("oneOf");
                    map.insert("allOf".into(), json!([other]));
                    map.insert("nullable".into(), json!(true));
                }
            }
            // 3.1 `examples` (an array) on schemas; 3.0 has `example`.
            if let Some(Value::Array(examples)) = map.remove("examples")
                && let Some(first) = examples.into_iter().next()
            {
                map.entry("example").or_insert(first);
            }
            for child in map.values_mut() {
                to_openapi_30(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_openapi_30),
        _ => {}
    }
}
