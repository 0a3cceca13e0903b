//! The shipped Prometheus alerting rules (`deploy/prometheus/`): `promtool check rules` accepts
//! them, `promtool test rules` passes their unit tests over synthetic series, every alert has a
//! case where it fires and one where it does not, and every llmhub metric they read is one llmhub
//! exposes (docs/metrics.md, itself checked against the code).

use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

fn yaml(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .output()
        .expect("promtool (Debian's prometheus package) on PATH");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package; scripts/test.sh)"]
fn alert_rules_pass_their_promtool_tests() {
    promtool(&["check", "rules", "llmhub-alerts.yml"]);
    promtool(&["test", "rules", "llmhub-alerts.test.yml"]);
}

#[test]
fn every_alert_is_tested_firing_and_quiet_on_metrics_llmhub_exposes() {
    let rules = yaml("llmhub-alerts.yml");
    let mut alerts = BTreeSet::new();
    let mut exprs = String::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            if let Some(a) = rule["alert"].as_str() {
                alerts.insert(a.to_owned());
            }
            exprs.push_str(rule["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    assert!(alerts.len() >= 9, "{alerts:?}");
    let tests = yaml("llmhub-alerts.test.yml");
    let (mut fires, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for t in tests["tests"].as_sequence().expect("tests") {
        for case in t["alert_rule_test"].as_sequence().expect("alert_rule_test") {
            let name = case["alertname"].as_str().expect("alertname").to_owned();
            let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected > 0 {
                fires.insert(name);
            } else {
                quiet.insert(name);
            }
        }
    }
    assert_eq!(fires, alerts, "every alert has a case where it fires");
    assert_eq!(quiet, alerts, "every alert has a case where it does not");

    // Metric names: the `llmhub_...` words of the expressions with a metric's suffix (label names
    // such as llmhub_reason have none; recording rules have a colon).
    let documented = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"))
        .expect("docs/metrics.md");
    let used: BTreeSet<&str> = exprs
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("llmhub_") && !w.contains(':'))
        .filter(|w| ["_total", "_seconds", "_bytes", "_rows"].iter().any(|s| w.ends_with(s)))
        .collect();
    assert!(used.len() >= 8, "{used:?}");
    for m in used {
        assert!(
            documented.contains(&format!("`{m}`")),
            "{m} is not a metric llmhub exposes"
        );
    }
}
