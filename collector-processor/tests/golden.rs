//! Golden files: every dialect fixture under `testdata/dialects/` normalized span by span and
//! compared with `testdata/dialects/expected/<name>.json`.
//!
//! Regenerate with `LLMHUB_BLESS=1 cargo test -p llmhub --test golden`, then read every changed
//! line of the diff against the fixture's notes in `testdata/dialects/README.md` before committing.

use llmhub::processors::view;
use llmhub::receivers::otlp::json;
use llmhub_core::span::ContextView;
use llmhub_core::{normalize, NormalizeOptions, Outcome};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects")
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("testdata/dialects exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn normalize_fixture(path: &Path) -> Value {
    let body = std::fs::read(path).expect("fixture readable");
    let req = json::decode_traces(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = NormalizeOptions::default();
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource = view::attributes(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]));
        for ss in &rs.scope_spans {
            let ctx = ContextView::new(
                &resource,
                ss.scope.as_ref().map_or("", |s| s.name.as_str()),
                &opts.tenant_keys,
            );
            for span in &ss.spans {
                let entry = match normalize(&ctx, &view::span(span), &opts) {
                    Outcome::NotGenAi => json!({ "span": span.name, "outcome": "not_genai" }),
                    Outcome::Rejected(r) => {
                        json!({ "span": span.name, "outcome": "rejected", "reason": r })
                    }
                    Outcome::Call(n) => json!({
                        "span": span.name,
                        "outcome": "call",
                        "record": n.call.to_json(),
                        "warnings": n.warnings,
                        "conflicts": n.conflicts.iter().map(|f| f.name()).collect::<Vec<_>>(),
                    }),
                };
                out.push(entry);
            }
        }
    }
    Value::Array(out)
}

#[test]
fn every_dialect_fixture_matches_its_golden_file() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 10,
        "expected a fixture per dialect, found {}",
        fixtures.len()
    );
    let bless = std::env::var_os("LLMHUB_BLESS").is_some();
    let mut failures = Vec::new();
    for f in &fixtures {
        let got = normalize_fixture(f);
        let name = f.file_name().expect("file name");
        let expected_path = dir().join("expected").join(name);
        let pretty = serde_json::to_string_pretty(&got).expect("serializable") + "\n";
        if bless {
            std::fs::create_dir_all(dir().join("expected")).expect("mkdir");
            std::fs::write(&expected_path, &pretty).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(want) if want == pretty => {}
            Ok(want) => {
                let want: Value = serde_json::from_str(&want).expect("golden is JSON");
                failures.push(format!(
                    "{}: differs from its golden file:\n{}",
                    f.display(),
                    diff(&want, &got)
                ));
            }
            Err(_) => failures.push(format!("{}: no golden file {}", f.display(), expected_path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(regenerate with LLMHUB_BLESS=1 and review the diff)",
        failures.join("\n")
    );
}

/// A short description of the first differences between two JSON values.
fn diff(want: &Value, got: &Value) -> String {
    let mut out = Vec::new();
    walk("", want, got, &mut out);
    out.truncate(20);
    out.join("\n")
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                walk(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                walk(
                    &format!("{path}[{i}]"),
                    x.get(i).unwrap_or(&Value::Null),
                    y.get(i).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("  {path}: expected {a}, got {b}")),
        _ => {}
    }
}
