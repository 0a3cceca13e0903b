//! The OpenTelemetry Collector's spellings, rewritten into llmhub's before the schema reads the
//! document, so a Collector user can paste what they have: component ids with a name
//! (`otlp/backend`, `otlphttp/backend`, `traces/llm`), `host:port` endpoints with
//! `tls.insecure`, `compression: gzip`, duration strings (`timeout: 10s`), `retry_on_failure`, `sending_queue.num_consumers`,
//! `service.telemetry.logs.{level,encoding}` and the `health_check` extension (llmhub serves
//! `/healthz` and `/readyz` itself). What has no llmhub meaning is refused with the llmhub key to
//! use instead.

use serde_yaml_ng::{Mapping, Value};

/// Rewrites the Collector's spellings in `doc` (a mapping); problems name the key and what to
/// write instead.
pub fn translate(doc: &mut Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let Some(root) = doc.as_mapping_mut() else {
        return Ok(());
    };
    extensions(root, &mut problems);
    if let Some(Value::Mapping(receivers)) = root.get_mut("receivers") {
        rename_ids(receivers, "receivers", &["otlp"], &mut problems);
    }
    if let Some(Value::Mapping(exporters)) = root.get_mut("exporters") {
        rename_ids(
            exporters,
            "exporters",
            &["otlp", "otlphttp", "prometheus", "postgres"],
            &mut problems,
        );
        if let Some(Value::Mapping(otlp)) = exporters.get_mut("otlp") {
            forward_keys(otlp, &mut problems);
        }
    }
    if let Some(Value::Mapping(service)) = root.get_mut("service") {
        if let Some(Value::Mapping(pipelines)) = service.get_mut("pipelines") {
            rename_ids(pipelines, "service.pipelines", &["traces"], &mut problems);
            if let Some(Value::Mapping(traces)) = pipelines.get_mut("traces") {
                for list in ["receivers", "exporters"] {
                    if let Some(Value::Sequence(ids)) = traces.get_mut(list) {
                        for id in ids.iter_mut() {
                            if let Some(s) = id.as_str() {
                                *id = Value::from(component(s));
                            }
                        }
                    }
                }
            }
        }
        telemetry_logs(service, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The llmhub component a Collector id stands for: the type before `/`, `otlphttp` being `otlp`
/// over HTTP.
fn component(id: &str) -> &str {
    match id.split('/').next().unwrap_or(id) {
        "otlphttp" => "otlp",
        t => t,
    }
}

/// Renames `type/name` keys of `section` to their type (one of `known`); two ids of one type are
/// refused (llmhub runs one of each).
fn rename_ids(section: &mut Mapping, path: &str, known: &[&str], problems: &mut Vec<String>) {
    let ids: Vec<String> = section
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .filter(|k| k.contains('/') || k == "otlphttp")
        .collect();
    for id in ids {
        let target = component(&id).to_owned();
        if !known.contains(&id.split('/').next().unwrap_or("")) {
            continue; // the schema names unknown components
        }
        if section.contains_key(target.as_str()) {
            problems.push(format!(
                "{path}.{id}: a second {target} (llmhub runs one of each); merge it into {path}.{target}"
            ));
            continue;
        }
        if let Some(mut value) = section.remove(id.as_str()) {
            if id.split('/').next() == Some("otlphttp") {
                if let Value::Mapping(m) = &mut value {
                    m.insert(Value::from("protocol"), Value::from("http_protobuf"));
                }
            }
            section.insert(Value::from(target), value);
        }
    }
}

/// `extensions:` and `service.extensions`: `health_check` is built in; others have no meaning.
fn extensions(root: &mut Mapping, problems: &mut Vec<String>) {
    if let Some(Value::Mapping(ext)) = root.remove("extensions") {
        for k in ext.keys().filter_map(Value::as_str) {
            if component(k) != "health_check" {
                problems.push(format!(
                    "extensions.{k}: llmhub has no extensions; /healthz and /readyz are served on exporters.prometheus.endpoint (remove it)"
                ));
            }
        }
    }
    if let Some(Value::Mapping(service)) = root.get_mut("service") {
        if let Some(Value::Sequence(list)) = service.remove("extensions") {
            for k in list.iter().filter_map(Value::as_str) {
                if component(k) != "health_check" {
                    problems.push(format!("service.extensions: {k}: llmhub has no extensions (remove it)"));
                }
            }
        }
    }
}

/// `service.telemetry.logs.{level,encoding}` → `service.telemetry.{log_level,log_format}`.
fn telemetry_logs(service: &mut Mapping, problems: &mut Vec<String>) {
    let Some(Value::Mapping(telemetry)) = service.get_mut("telemetry") else {
        return;
    };
    let Some(Value::Mapping(logs)) = telemetry.remove("logs") else {
        return;
    };
    for (k, v) in logs {
        match (k.as_str(), v.as_str()) {
            (Some("level"), Some(level)) => {
                telemetry.insert(Value::from("log_level"), Value::from(level.to_ascii_lowercase()));
            }
            (Some("encoding"), Some(e @ ("json" | "console"))) => {
                let format = if e == "json" { "json" } else { "text" };
                telemetry.insert(Value::from("log_format"), Value::from(format));
            }
            (Some(key), _) => problems.push(format!(
                "service.telemetry.logs.{key}: not supported; llmhub reads level and encoding (json or console) here, or service.telemetry.log_level and log_format"
            )),
            (None, _) => {}
        }
    }
}

/// The span forwarder's Collector keys.
fn forward_keys(otlp: &mut Mapping, problems: &mut Vec<String>) {
    const P: &str = "exporters.otlp";
    // `tls.insecure: true` is the Collector's plaintext gRPC; an endpoint without a scheme is
    // `host:port`, over TLS unless insecure.
    let mut insecure = false;
    if let Some(Value::Mapping(tls)) = otlp.get_mut("tls") {
        insecure = tls.remove("insecure").and_then(|v| v.as_bool()).unwrap_or(false);
        if tls.is_empty() {
            otlp.remove("tls");
        }
    }
    if let Some(Value::String(endpoint)) = otlp.get_mut("endpoint") {
        if !endpoint.contains("://") {
            let scheme = if insecure { "http" } else { "https" };
            *endpoint = format!("{scheme}://{endpoint}");
        } else if insecure && endpoint.starts_with("https://") {
            problems.push(format!(
                "{P}.tls.insecure: true, but the endpoint {endpoint:?} is https://; use http:// for plaintext"
            ));
        }
    }
    if let Some(c) = otlp.remove("compression") {
        match c.as_str() {
            Some("gzip") => {
                otlp.insert(Value::from("gzip"), Value::from(true));
            }
            Some("none" | "") => {
                otlp.insert(Value::from("gzip"), Value::from(false));
            }
            _ => problems.push(format!(
                "{P}.compression: got {c:?}; llmhub compresses with gzip or not at all (gzip: true or false)"
            )),
        }
    }
    if let Some(t) = otlp.remove("timeout") {
        match duration_ms(&t) {
            Some(ms) => {
                otlp.insert(Value::from("timeout_ms"), Value::from(ms));
            }
            None => problems.push(format!(
                "{P}.timeout: got {t:?}; expected a duration such as 10s or 500ms"
            )),
        }
    }
    if let Some(Value::Mapping(retry)) = otlp.remove("retry_on_failure") {
        for (k, v) in retry {
            match k.as_str() {
                Some("enabled") if v.as_bool() == Some(true) => {}
                Some("enabled") => problems.push(format!(
                    "{P}.retry_on_failure.enabled: llmhub always retries what the endpoint may accept later, and dead-letters what it refuses for good"
                )),
                Some(key @ ("initial_interval" | "max_interval")) => match duration_ms(&v) {
                    Some(ms) => {
                        let to = if key == "initial_interval" { "retry_initial_ms" } else { "retry_max_ms" };
                        otlp.insert(Value::from(to), Value::from(ms));
                    }
                    None => problems.push(format!("{P}.retry_on_failure.{key}: got {v:?}; expected a duration such as 5s")),
                },
                Some(key) => problems.push(format!(
                    "{P}.retry_on_failure.{key}: not supported; llmhub retries until the request is sent or refused for good (retry_initial_ms, retry_max_ms)"
                )),
                None => {}
            }
        }
    }
    if let Some(Value::Mapping(queue)) = otlp.remove("sending_queue") {
        for (k, v) in queue {
            match k.as_str() {
                Some("enabled") if v.as_bool() == Some(true) => {}
                Some("num_consumers") => {
                    otlp.insert(Value::from("senders"), v);
                }
                Some("queue_size") => problems.push(format!(
                    "{P}.sending_queue.queue_size: llmhub bounds its queue in bytes: {P}.queue.max_memory_bytes (or max_disk_bytes with a directory)"
                )),
                Some("storage") => problems.push(format!(
                    "{P}.sending_queue.storage: llmhub keeps the queue on disk in {P}.queue.directory"
                )),
                Some(key) => problems.push(format!(
                    "{P}.sending_queue.{key}: not supported; see {P}.queue and {P}.senders"
                )),
                None => {}
            }
        }
    }
}

/// A Go-style duration (`10s`, `500ms`, `1m30s`, `2h`), in milliseconds. A bare number is refused:
/// the Collector would read it as nanoseconds, llmhub's own keys as milliseconds.
fn duration_ms(v: &Value) -> Option<u64> {
    let mut s = v.as_str()?.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !s.is_empty() {
        let digits = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let n: f64 = s[..digits].parse().ok()?;
        s = &s[digits..];
        let unit = s.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(s.len());
        let ms = match &s[..unit] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "us" | "µs" => 0.001,
            _ => return None,
        };
        total += n * ms;
        s = &s[unit..];
    }
    Some(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_go_writes_them() {
        let ms = |s: &str| duration_ms(&Value::from(s));
        assert_eq!(ms("10s"), Some(10_000));
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("1m30s"), Some(90_000));
        assert_eq!(ms("1.5s"), Some(1_500));
        assert_eq!(ms("2h"), Some(7_200_000));
        assert_eq!(duration_ms(&Value::from(250u64)), None);
        assert_eq!(ms("10"), None);
        assert_eq!(ms("ten seconds"), None);
        assert_eq!(ms(""), None);
    }
}
