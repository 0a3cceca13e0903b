//! Config tests: defaults, env expansion, unknown keys and validation messages.

use super::expand::expand_str;
use super::*;

#[test]
fn empty_document_is_the_default_config() {
    assert_eq!(from_yaml_str("").unwrap(), Config::default());
    assert_eq!(from_yaml_str("{}").unwrap(), Config::default());
    let c = Config::default();
    assert_eq!(
        c.receivers.otlp.protocols.grpc.as_ref().unwrap().endpoint,
        "0.0.0.0:4317"
    );
    assert_eq!(
        c.receivers.otlp.protocols.http.as_ref().unwrap().endpoint,
        "0.0.0.0:4318"
    );
    assert_eq!(c.exporters.prometheus.endpoint, "0.0.0.0:9464");
}

#[test]
fn collector_shaped_config_parses() {
    let c = from_yaml_str(
        r#"
receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:14317" }
processors:
  genai:
    tenant_attributes: [tenant.id, org.id]
    dedup: { enabled: false }
exporters:
  prometheus:
    endpoint: "127.0.0.1:19464"
    cardinality: { max_series_per_metric: 500 }
service:
  pipelines:
    traces: { receivers: [otlp], processors: [genai], exporters: [prometheus] }
"#,
    )
    .unwrap();
    assert_eq!(c.receivers.otlp.protocols.grpc.unwrap().endpoint, "127.0.0.1:14317");
    assert!(c.receivers.otlp.protocols.http.is_none());
    assert_eq!(c.processors.genai.tenant_attributes, vec!["tenant.id", "org.id"]);
    assert!(!c.processors.genai.dedup.enabled);
    assert_eq!(c.exporters.prometheus.cardinality.max_series_per_metric, 500);
    assert_eq!(
        c.exporters.prometheus.cardinality.max_values_per_label, 1000,
        "unset fields keep defaults"
    );
}

#[test]
fn protocols_follow_the_collector_convention() {
    // Listed with an empty value: on, with defaults; not listed: off.
    let c = from_yaml_str("receivers:\n  otlp:\n    protocols:\n      grpc:\n").unwrap();
    assert_eq!(c.receivers.otlp.protocols.grpc, Some(GrpcProtocol::default()));
    assert_eq!(c.receivers.otlp.protocols.http, None);
    // No protocols key at all: both on.
    let c = from_yaml_str("receivers:\n  otlp: {}\n").unwrap();
    assert!(c.receivers.otlp.protocols.grpc.is_some() && c.receivers.otlp.protocols.http.is_some());
    // A transport turned off stays off through check-config's printed form.
    let text = serde_yaml_ng::to_string(&from_yaml_str("receivers: {otlp: {protocols: {http: {}}}}").unwrap()).unwrap();
    assert_eq!(from_yaml_str(&text).unwrap().receivers.otlp.protocols.grpc, None);
    assert!(
        from_yaml_str("receivers: {otlp: {protocols: {}}}").is_err(),
        "no transport at all is an error"
    );
}

#[test]
fn unknown_key_is_rejected_with_its_path() {
    let err =
        from_yaml_str("receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpont: 1.2.3.4:1\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("receivers.otlp.protocols.grpc"), "{msg}");
    assert!(msg.contains("unknown field `endpont`"), "{msg}");
    assert!(msg.contains("endpoint"), "the accepted keys are listed: {msg}");
}

#[test]
fn wrong_type_names_the_path() {
    let msg = from_yaml_str("exporters:\n  prometheus:\n    cardinality:\n      max_series_per_metric: many\n")
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("exporters.prometheus.cardinality.max_series_per_metric"),
        "{msg}"
    );
}

#[test]
fn env_references_expand_and_can_fill_numbers() {
    let lookup = |n: &str| match n {
        "PORT" => Some("4999".to_owned()),
        "HOST" => Some("127.0.0.1".to_owned()),
        _ => None,
    };
    assert_eq!(
        expand_str("${env:HOST}:${env:PORT}", &lookup).unwrap(),
        "127.0.0.1:4999"
    );
    assert_eq!(expand_str("${env:MISSING:-9464}", &lookup).unwrap(), "9464");
    assert_eq!(expand_str("cost is $$5", &lookup).unwrap(), "cost is $5");
    let err = expand_str("${env:MISSING}", &lookup).unwrap_err().to_string();
    assert!(err.contains("MISSING is not set"), "{err}");
    assert!(expand_str("${env:BAD-NAME}", &lookup).is_err());

    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str("a: ${env:PORT}\nb: x-${env:PORT}\n").unwrap();
    expand::expand_env(&mut doc, &lookup).unwrap();
    assert_eq!(
        doc["a"],
        serde_yaml_ng::Value::Number(4999.into()),
        "a whole reference re-reads as a number"
    );
    assert_eq!(doc["b"], serde_yaml_ng::Value::String("x-4999".into()));
}

#[test]
fn validation_reports_every_problem_at_once() {
    let err = from_yaml_str(
        r#"
receivers: { otlp: { protocols: { grpc: { endpoint: "nowhere" }, http: { max_request_body_size_mib: 0 } } } }
exporters: { prometheus: { endpoint: "0.0.0.0:99999", cardinality: { max_values_per_label: 0 } } }
service: { pipelines: { traces: { exporters: [postgres, kafka] } }, telemetry: { log_format: xml } }
"#,
    )
    .unwrap_err();
    let ConfigError::Invalid(list) = err else {
        panic!("expected validation errors, got {err}")
    };
    let all = list.join("\n");
    for needle in [
        "receivers.otlp.protocols.grpc.endpoint: got \"nowhere\", expected host:port",
        "receivers.otlp.protocols.http.max_request_body_size_mib: got 0",
        "exporters.prometheus.endpoint: got \"0.0.0.0:99999\"",
        "exporters.prometheus.cardinality.max_values_per_label: got 0",
        "service.pipelines.traces.exporters: unknown exporter \"kafka\"",
        "service.pipelines.traces.exporters: lists postgres, but exporters.postgres is not configured",
        "service.telemetry.log_format: got \"xml\"",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(list.len(), 7, "{all}");
}

#[test]
fn postgres_exporter_settings_are_validated_with_their_paths() {
    let err = from_yaml_str(
        r#"
exporters:
  postgres:
    url: "postgres://u@h:notaport/db"
    schema: "Bad-Schema"
    pool_size: 0
    tls: { cert_file: /tmp/c.pem }
    queue: { durability: wal }
service: { pipelines: { traces: { exporters: [prometheus, postgres] } } }
"#,
    )
    .unwrap_err();
    let ConfigError::Invalid(list) = err else {
        panic!("expected validation errors, got {err}")
    };
    let all = list.join("\n");
    for needle in [
        "exporters.postgres.url: not a PostgreSQL connection string",
        "exporters.postgres.schema: must be a lower-case SQL identifier",
        "exporters.postgres.pool_size: must be 1..=64, got 0",
        "exporters.postgres.tls: cert_file and key_file go together",
        "exporters.postgres.queue.durability: `wal` needs exporters.postgres.queue.directory",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(list.len(), 5, "{all}");
    // An empty entry is the sink with defaults (connection from the libpq environment).
    let c = from_yaml_str("exporters: { postgres: }\nservice: { pipelines: { traces: { exporters: [postgres] } } }\n")
        .unwrap();
    assert_eq!(c.exporters.postgres, Some(Default::default()));
}

/// The sink's batching, retry, timeout and queue bounds, and the forwarder's endpoint: each value
/// out of range is named with its path and the range (docs/coverage-gaps.md, `config`).
#[test]
fn sink_bounds_and_the_forwarder_endpoint_are_validated_with_their_paths() {
    let problems = |yaml: &str| match from_yaml_str(yaml).unwrap_err() {
        ConfigError::Invalid(list) => list,
        other => panic!("expected validation errors, got {other}"),
    };
    let list = problems(
        r#"
exporters:
  postgres:
    batch_max_rows: 0
    retry_initial_ms: 5000
    retry_max_ms: 100
    write_timeout_ms: 50
    queue: { max_memory_bytes: 0, segment_bytes: 1000 }
service: { pipelines: { traces: { exporters: [prometheus, postgres] } } }
"#,
    );
    let all = list.join("\n");
    for needle in [
        "exporters.postgres.batch_max_rows: must be 1..=1000000, got 0",
        "exporters.postgres.retry_initial_ms: must be positive and at most retry_max_ms (100), got 5000",
        "exporters.postgres.write_timeout_ms: got 50, expected 100 to 3600000",
        "exporters.postgres.queue.max_memory_bytes: must be positive, got 0",
        "exporters.postgres.queue.segment_bytes: must be at least 1048576 (1 MiB), got 1000",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(list.len(), 5, "{all}");
    let list = problems(
        "exporters:\n  postgres:\n    queue: { directory: /tmp/q, max_disk_bytes: 1000 }\nservice: { pipelines: { traces: { exporters: [postgres] } } }\n",
    );
    assert_eq!(
        list,
        ["exporters.postgres.queue.max_disk_bytes: must be at least segment_bytes (67108864), got 1000"]
    );
    let list = problems(
        "exporters:\n  otlp:\n    endpoint: \"ftp://collector:4317\"\nservice: { pipelines: { traces: { exporters: [otlp] } } }\n",
    );
    let all = list.join("\n");
    assert!(
        all.contains(r#"exporters.otlp.endpoint: got "ftp://collector:4317", expected an http:// or https:// URL"#),
        "{all}"
    );
}

#[test]
fn default_config_round_trips_through_yaml() {
    let text = serde_yaml_ng::to_string(&Config::default()).unwrap();
    assert_eq!(from_yaml_str(&text).unwrap(), Config::default());
}

#[test]
fn return_freed_is_on_below_512_mib_unless_told() {
    let on = |yaml: &str| from_yaml_str(yaml).unwrap().service.memory.returns_freed();
    assert!(on("service:\n  memory:\n    limit_mib: 256\n"));
    assert!(!on(
        "service:\n  memory:\n    limit_mib: 256\n    return_freed: never\n"
    ));
    assert!(on("service:\n  memory:\n    return_freed: always\n"));
    assert!(!Config::default().service.memory.returns_freed());
    let e = from_yaml_str("service:\n  memory:\n    return_freed: sometimes\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("service.memory.return_freed"), "{e}");
}

#[test]
fn a_memory_limit_the_dedup_window_would_fill_is_refused() {
    let e = from_yaml_str(
        "service:\n  memory:\n    limit_mib: 96\nprocessors:\n  genai:\n    dedup:\n      max_entries: 300000\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("service.memory.limit_mib: 96 MiB leaves 17 MiB for requests and queues")
            && e.contains("processors.genai.dedup.max_entries: 300000 keys, about 54 MiB"),
        "{e}"
    );
    // The default window (100 000 keys) fits.
    assert!(from_yaml_str("service:\n  memory:\n    limit_mib: 96\n").is_ok());
}

#[test]
fn the_collectors_spellings_are_read_as_llmhubs_or_refused_naming_the_key_to_use() {
    let c = from_yaml_str(
        r#"
extensions:
  health_check: {}
receivers:
  otlp/apps:
    protocols:
      grpc: { endpoint: "127.0.0.1:14317" }
exporters:
  prometheus/self: { endpoint: "127.0.0.1:19464" }
  otlphttp/backend:
    endpoint: https://backend.example:4318
    headers: { x-api-key: "k" }
    compression: none
    timeout: 1m30s
    retry_on_failure: { enabled: true, initial_interval: 500ms, max_interval: 1m }
    sending_queue: { enabled: true, num_consumers: 4 }
service:
  extensions: [health_check]
  telemetry:
    logs: { level: DEBUG, encoding: json }
  pipelines:
    traces/llm:
      receivers: [otlp/apps]
      processors: [genai]
      exporters: [prometheus/self, otlphttp/backend]
"#,
    )
    .unwrap();
    let o = c.exporters.otlp.as_ref().expect("the otlphttp exporter");
    assert_eq!(o.protocol, llmhub_exporters::otlp_metrics::OtlpProtocol::HttpProtobuf);
    assert_eq!(o.endpoint, "https://backend.example:4318");
    assert!(!o.gzip);
    assert_eq!(
        (o.timeout_ms, o.retry_initial_ms, o.retry_max_ms, o.senders),
        (90_000, 500, 60_000, 4)
    );
    assert_eq!(c.exporters.prometheus.endpoint, "127.0.0.1:19464");
    assert_eq!(
        c.receivers.otlp.protocols.grpc.as_ref().unwrap().endpoint,
        "127.0.0.1:14317"
    );
    assert_eq!(c.service.pipelines.traces.receivers, ["otlp"]);
    assert_eq!(c.service.pipelines.traces.exporters, ["prometheus", "otlp"]);
    assert_eq!(
        (
            c.service.telemetry.log_level.as_str(),
            c.service.telemetry.log_format.as_str()
        ),
        ("debug", "json")
    );

    // A gRPC endpoint as host:port: TLS unless `tls.insecure`.
    let endpoint = |otlp: &str| {
        from_yaml_str(&format!("exporters: {{ otlp: {otlp} }}"))
            .map(|c| c.exporters.otlp.map(|o| (o.endpoint, o.tls.is_some())))
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        endpoint("{ endpoint: \"collector:4317\", tls: { insecure: true } }"),
        Ok(Some(("http://collector:4317".to_owned(), false)))
    );
    assert_eq!(
        endpoint("{ endpoint: \"collector:4317\" }"),
        Ok(Some(("https://collector:4317".to_owned(), false)))
    );
    assert_eq!(
        endpoint("{ endpoint: \"collector:4317\", tls: { ca_file: /ca.pem } }"),
        Ok(Some(("https://collector:4317".to_owned(), true)))
    );
    let e = endpoint("{ endpoint: \"https://collector:4317\", tls: { insecure: true } }").unwrap_err();
    assert!(e.contains("exporters.otlp.tls.insecure: true, but the endpoint"), "{e}");

    // What has no llmhub meaning is refused, each naming what to write instead.
    let e = from_yaml_str(
        r#"
extensions: { pprof: {} }
exporters:
  otlp/a: { endpoint: "http://a:4317" }
  otlp/b: { endpoint: "http://b:4317", }
  otlp: { endpoint: "http://c:4317", compression: zstd, timeout: 10,
          retry_on_failure: { enabled: false, max_elapsed_time: 300s },
          sending_queue: { queue_size: 1000, storage: file_storage } }
"#,
    )
    .unwrap_err()
    .to_string();
    for want in [
        "extensions.pprof: llmhub has no extensions; /healthz and /readyz are served on exporters.prometheus.endpoint",
        "exporters.otlp/a: a second otlp (llmhub runs one of each); merge it into exporters.otlp",
        "exporters.otlp/b: a second otlp",
        "exporters.otlp.compression: got String(\"zstd\"); llmhub compresses with gzip or not at all",
        "exporters.otlp.timeout: got Number(10); expected a duration such as 10s or 500ms",
        "exporters.otlp.retry_on_failure.enabled: llmhub always retries",
        "exporters.otlp.retry_on_failure.max_elapsed_time: not supported",
        "exporters.otlp.sending_queue.queue_size: llmhub bounds its queue in bytes: exporters.otlp.queue.max_memory_bytes",
        "exporters.otlp.sending_queue.storage: llmhub keeps the queue on disk in exporters.otlp.queue.directory",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}
