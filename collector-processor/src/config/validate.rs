//! Validation without I/O. Every problem is reported at once, each naming the key's path, the value
//! received and the accepted form.

use super::{Config, ConfigError};

/// Checks a parsed configuration.
pub fn validate(c: &Config) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    let p = &c.receivers.otlp.protocols;
    if let Some(g) = &p.grpc {
        endpoint("receivers.otlp.protocols.grpc.endpoint", &g.endpoint, &mut errors);
        positive(
            "receivers.otlp.protocols.grpc.max_recv_msg_size_mib",
            g.max_recv_msg_size_mib,
            1024,
            &mut errors,
        );
    }
    if let Some(h) = &p.http {
        endpoint("receivers.otlp.protocols.http.endpoint", &h.endpoint, &mut errors);
        positive(
            "receivers.otlp.protocols.http.max_request_body_size_mib",
            h.max_request_body_size_mib,
            1024,
            &mut errors,
        );
        positive(
            "receivers.otlp.protocols.http.max_decompressed_body_size_mib",
            h.max_decompressed_body_size_mib,
            4096,
            &mut errors,
        );
    }
    let l = &c.receivers.otlp.limits;
    for (key, v, max) in [
        (
            "receivers.otlp.limits.max_spans_per_request",
            l.max_spans_per_request,
            10_000_000,
        ),
        (
            "receivers.otlp.limits.max_attributes_per_span",
            l.max_attributes_per_span,
            1_000_000,
        ),
        (
            "receivers.otlp.limits.max_events_per_span",
            l.max_events_per_span,
            1_000_000,
        ),
    ] {
        if v == 0 || v > max {
            errors.push(format!("{key}: got {v}, expected 1 to {max}"));
        }
    }
    if p.grpc.is_none() && p.http.is_none() {
        errors.push("receivers.otlp.protocols: lists no transport; list at least one, e.g. `grpc:` (defaults) or `http: {endpoint: 0.0.0.0:4318}`".to_owned());
    }
    let g = &c.processors.genai;
    if !(16..=65_536).contains(&g.max_attribute_value_length) {
        errors.push(format!(
            "processors.genai.max_attribute_value_length: got {}, expected a number of bytes from 16 to 65536, e.g. 256",
            g.max_attribute_value_length
        ));
    }
    if g.tenant_attributes.iter().any(|k| k.trim().is_empty()) {
        errors.push(
            "processors.genai.tenant_attributes: contains an empty key; expected attribute keys, e.g. [tenant.id]"
                .to_owned(),
        );
    }
    if g.dedup.enabled && !(1..=10_000_000).contains(&g.dedup.max_entries) {
        errors.push(format!(
            "processors.genai.dedup.max_entries: got {}, expected 1 to 10000000, e.g. 100000",
            g.dedup.max_entries
        ));
    }
    if let Err(problems) = llmhub_content::ContentPolicy::new(&g.content, "processors.genai.content") {
        errors.extend(problems);
    }
    if let Some(a) = &c.receivers.otlp.auth {
        if let Err(problems) = llmhub_server::auth::Authenticator::new(a, "receivers.otlp.auth", true) {
            errors.extend(problems);
        }
    }
    if let Some(a) = &c.exporters.prometheus.auth {
        if let Err(problems) = llmhub_server::auth::Authenticator::new(a, "exporters.prometheus.auth", false) {
            errors.extend(problems);
        }
    }
    if let Err(e) = user_catalog(&g.pricing) {
        errors.push(format!("processors.genai.pricing.models: {e}"));
    }
    if g.pricing.catalog.as_deref().is_some_and(|p| p.trim().is_empty()) {
        errors.push(
            "processors.genai.pricing.catalog: empty path; remove the key to use the built-in catalog".to_owned(),
        );
    }
    let prom = &c.exporters.prometheus;
    endpoint("exporters.prometheus.endpoint", &prom.endpoint, &mut errors);
    let card = &prom.cardinality;
    if !(1..=1_000_000).contains(&card.max_series_per_metric) {
        errors.push(format!(
            "exporters.prometheus.cardinality.max_series_per_metric: got {}, expected 1 to 1000000, e.g. 10000",
            card.max_series_per_metric
        ));
    }
    if !(1..=1_000_000).contains(&card.max_values_per_label) {
        errors.push(format!(
            "exporters.prometheus.cardinality.max_values_per_label: got {}, expected 1 to 1000000, e.g. 1000",
            card.max_values_per_label
        ));
    }
    let listeners = [
        (
            c.receivers.otlp.protocols.grpc.as_ref().and_then(|g| g.tls.as_ref()),
            "receivers.otlp.protocols.grpc.tls",
            llmhub_server::tls::ALPN_GRPC,
        ),
        (
            c.receivers.otlp.protocols.http.as_ref().and_then(|h| h.tls.as_ref()),
            "receivers.otlp.protocols.http.tls",
            llmhub_server::tls::ALPN_HTTP,
        ),
        (
            c.exporters.prometheus.tls.as_ref(),
            "exporters.prometheus.tls",
            llmhub_server::tls::ALPN_HTTP,
        ),
    ];
    for (tls, path, alpn) in listeners {
        if let Some(Err(e)) = tls.map(|t| t.load(path, alpn)) {
            errors.push(e.to_string());
        }
    }
    if !(64..=1_048_576).contains(&c.service.memory.limit_mib) {
        errors.push(format!(
            "service.memory.limit_mib: got {}, expected 64 to 1048576 (MiB of resident memory), e.g. 1024",
            c.service.memory.limit_mib
        ));
    } else {
        let limit = c.service.memory.limit_mib * 1024 * 1024;
        let dedup = crate::processors::genai::dedup_max_bytes(g);
        let room = limit
            .saturating_sub(limit / llmhub_server::budget::RESERVE)
            .saturating_sub(dedup);
        if room < 32 * 1024 * 1024 {
            errors.push(format!(
                "service.memory.limit_mib: {} MiB leaves {} MiB for requests and queues once the deduplication window (processors.genai.dedup.max_entries: {} keys, about {} MiB) and the reserve of a quarter are set aside; expected at least 32 MiB: raise the limit or lower max_entries",
                c.service.memory.limit_mib,
                room / (1024 * 1024),
                g.dedup.max_entries,
                dedup / (1024 * 1024),
            ));
        }
    }
    let t = &c.service.pipelines.traces;
    for r in &t.receivers {
        if r != "otlp" {
            errors.push(format!(
                "service.pipelines.traces.receivers: unknown receiver {r:?}; available: otlp"
            ));
        }
    }
    if t.receivers.is_empty() {
        errors.push("service.pipelines.traces.receivers: empty; expected [otlp]".to_owned());
    }
    for r in &t.processors {
        if r != "genai" {
            errors.push(format!(
                "service.pipelines.traces.processors: unknown processor {r:?}; available: genai"
            ));
        }
    }
    for r in &t.exporters {
        if !matches!(r.as_str(), "prometheus" | "postgres" | "otlp_metrics" | "otlp") {
            errors.push(format!(
                "service.pipelines.traces.exporters: unknown exporter {r:?}; available: prometheus, postgres, otlp_metrics, otlp"
            ));
        }
    }
    match &c.exporters.otlp {
        Some(o) => errors.extend(o.problems("exporters.otlp")),
        None if t.exporters.iter().any(|e| e == "otlp") => errors.push(
            "service.pipelines.traces.exporters: lists otlp, but exporters.otlp is not configured; add e.g. `exporters: {otlp: {endpoint: \"http://otel-collector:4317\"}}`".to_owned(),
        ),
        None => {}
    }
    match &c.exporters.otlp_metrics {
        Some(o) => errors.extend(o.problems("exporters.otlp_metrics")),
        None if t.exporters.iter().any(|e| e == "otlp_metrics") => errors.push(
            "service.pipelines.traces.exporters: lists otlp_metrics, but exporters.otlp_metrics is not configured; add e.g. `exporters: {otlp_metrics: {endpoint: \"http://otel-collector:4317\"}}`".to_owned(),
        ),
        None => {}
    }
    match &c.exporters.postgres {
        Some(pg) => errors.extend(pg.problems("exporters.postgres")),
        None if t.exporters.iter().any(|e| e == "postgres") => errors.push(
            "service.pipelines.traces.exporters: lists postgres, but exporters.postgres is not configured; add e.g. `exporters: {postgres: {url: \"postgres://llmhub@localhost/llmhub\"}}`".to_owned(),
        ),
        None => {}
    }
    let tel = &c.service.telemetry;
    if tracing_subscriber::EnvFilter::try_new(&tel.log_level).is_err() {
        errors.push(format!(
            "service.telemetry.log_level: got {:?}, expected error, warn, info, debug, trace or a filter such as `llmhub=debug`",
            tel.log_level
        ));
    }
    if !matches!(tel.log_format.as_str(), "text" | "json") {
        errors.push(format!(
            "service.telemetry.log_format: got {:?}, expected text or json",
            tel.log_format
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(errors))
    }
}

/// The user's models as a catalog (version `user`), parsed and linted; `None` when there are none.
pub fn user_catalog(p: &super::PricingConfig) -> Result<Option<llmhub_pricing::Catalog>, llmhub_pricing::CatalogError> {
    if p.models.is_empty() {
        return Ok(None);
    }
    let file = llmhub_pricing::catalog::CatalogFile {
        catalog_version: "user".to_owned(),
        currency: "USD".to_owned(),
        models: p.models.clone(),
    };
    let c = llmhub_pricing::Catalog::from_file(&file)?;
    let problems = llmhub_pricing::lint::lint(&c);
    if problems.is_empty() {
        Ok(Some(c))
    } else {
        Err(llmhub_pricing::CatalogError::Lint(problems))
    }
}

fn endpoint(path: &str, value: &str, errors: &mut Vec<String>) {
    let ok = match value.rsplit_once(':') {
        Some((host, port)) => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            port.parse::<u16>().is_ok() && (host == "localhost" || host.parse::<std::net::IpAddr>().is_ok())
        }
        None => false,
    };
    if !ok {
        errors.push(format!(
            "{path}: got {value:?}, expected host:port with an IP address or localhost, e.g. 0.0.0.0:4317 (port 0 picks a free port)"
        ));
    }
}

fn positive(path: &str, value: u64, max: u64, errors: &mut Vec<String>) {
    if value == 0 || value > max {
        errors.push(format!("{path}: got {value}, expected 1 to {max}"));
    }
}
