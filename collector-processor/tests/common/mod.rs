//! Shared test helpers: start llmhub on free loopback ports, scrape and query its metrics.
#![allow(dead_code)]

pub mod capture;
pub mod pg;
pub mod prometheus;

use llmhub::config::Config;
use llmhub::service::{self, Running};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

/// A config listening on 127.0.0.1 with OS-chosen ports.
pub fn loopback_config() -> Config {
    let mut c = Config::default();
    if let Some(g) = c.receivers.otlp.protocols.grpc.as_mut() {
        g.endpoint = "127.0.0.1:0".into();
    }
    if let Some(h) = c.receivers.otlp.protocols.http.as_mut() {
        h.endpoint = "127.0.0.1:0".into();
    }
    c.exporters.prometheus.endpoint = "127.0.0.1:0".into();
    c
}

/// POSTs an OTLP/HTTP body with `content_type` and returns the status code.
pub async fn post_otlp(url: &str, content_type: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

/// Starts llmhub with `c`.
pub async fn start(c: &Config) -> Running {
    service::start(c).await.expect("llmhub starts")
}

/// One exposition sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Scrapes `/metrics` and parses the OpenMetrics text.
pub async fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    parse(&text)
}

/// Parses exposition text (names, quoted label values with escapes, values).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i..]),
            None => {
                let (n, v) = line.split_once(' ').expect("sample line");
                out.push(Sample {
                    name: n.into(),
                    labels: BTreeMap::new(),
                    value: v.trim().parse().expect("value"),
                });
                continue;
            }
        };
        let mut labels = BTreeMap::new();
        let b = rest.as_bytes();
        let mut i = 1;
        loop {
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let eq = rest[i..].find('=').expect("=") + i;
            let key = rest[i..eq].trim_start_matches(',').to_string();
            i = eq + 2; // skip ="
            let mut val = String::new();
            while b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                    val.push(match b[i] {
                        b'n' => '\n',
                        c => c as char,
                    });
                } else {
                    let ch = rest[i..].chars().next().expect("char");
                    val.push(ch);
                    i += ch.len_utf8() - 1;
                }
                i += 1;
            }
            i += 1; // closing quote
            labels.insert(key, val);
            if b[i] == b',' {
                i += 1;
            }
        }
        let value = rest[i..]
            .trim()
            .split(' ')
            .next()
            .expect("value")
            .parse()
            .expect("numeric value");
        out.push(Sample {
            name: name.into(),
            labels,
            value,
        });
    }
    out
}

/// The samples named `name` whose labels include every `(key, value)` of `want`.
fn matching<'a>(
    samples: &'a [Sample],
    name: &'a str,
    want: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    samples.iter().filter(move |s| {
        s.name == name
            && want
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// Sum of the samples named `name` whose labels include every `(key, value)` of `want`.
pub fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    matching(samples, name, want).map(|s| s.value).sum()
}

/// Number of samples named `name` matching `want`.
pub fn count(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> usize {
    matching(samples, name, want).count()
}

#[allow(unused_imports)]
pub use llmhub_testkit::{chat, d, i, request, s, span};

/// Every dialect fixture (`testdata/dialects/*.json`, OTLP/JSON) as (path, body), sorted by path.
pub fn fixture_requests() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v.into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).expect("fixture")))
        .collect()
}
