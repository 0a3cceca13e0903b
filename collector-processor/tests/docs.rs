//! Documentation checked against the code: the metric catalogue in `docs/metrics.md` and the
//! default configuration in `docs/configuration.md`. `LLMHUB_BLESS=1` rewrites the generated parts.

use llmhub::config::Config;
use llmhub::metrics::{all, Kind};
use std::path::PathBuf;

fn doc(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs").join(name)
}

fn check_section(name: &str, begin: &str, end: &str, generated: &str) {
    let path = doc(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = text.find(begin).expect("begin marker") + begin.len();
    let stop = text.find(end).expect("end marker");
    if std::env::var_os("LLMHUB_BLESS").is_some() {
        std::fs::write(&path, format!("{}{}{}", &text[..start], generated, &text[stop..])).expect("write");
        return;
    }
    assert_eq!(
        &text[start..stop],
        generated,
        "docs/{name} is stale: run LLMHUB_BLESS=1 cargo test -p llmhub --test docs"
    );
}

#[test]
fn metrics_doc_lists_the_catalogue() {
    let mut t = String::from("| OpenTelemetry name | Prometheus name | type | unit | attributes | what it measures |\n|---|---|---|---|---|---|\n");
    for m in all() {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
            Kind::Gauge => "gauge",
        };
        let attrs = m
            .attributes
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        t.push_str(&format!(
            "| `{}` | `{}` | {} | `{}` | {} | {} |\n",
            m.name,
            m.prometheus_name(),
            kind,
            m.unit,
            attrs,
            m.help
        ));
    }
    check_section(
        "metrics.md",
        "<!-- BEGIN METRIC TABLE -->\n",
        "<!-- END METRIC TABLE -->",
        &t,
    );
}

#[test]
fn configuration_doc_shows_the_defaults() {
    let yaml = serde_yaml_ng::to_string(&Config::default()).expect("yaml");
    check_section(
        "configuration.md",
        "<!-- BEGIN DEFAULTS -->\n```yaml\n",
        "```\n<!-- END DEFAULTS -->",
        &yaml,
    );
}
