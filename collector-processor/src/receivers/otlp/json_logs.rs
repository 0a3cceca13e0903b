//! OTLP/JSON logs export requests, decoded as [`super::json`] decodes traces (same scalar, id and
//! attribute rules).

use super::json::{any, decode, hex_id, kvs, nullable, Enum, JAnyValue, JKeyValue, JResource, JScope, U64};
use super::malformed::Malformed;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use serde::Deserialize;

/// Decodes an OTLP/JSON logs export request.
pub fn decode_logs(body: &[u8]) -> Result<ExportLogsServiceRequest, Malformed> {
    decode::<JLogsExport>(body).map(Into::into)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JLogsExport {
    #[serde(default, deserialize_with = "nullable", alias = "resource_logs")]
    resource_logs: Vec<JResourceLogs>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JResourceLogs {
    #[serde(default)]
    resource: Option<JResource>,
    #[serde(default, deserialize_with = "nullable", alias = "scope_logs")]
    scope_logs: Vec<JScopeLogs>,
    #[serde(default, deserialize_with = "nullable", alias = "schema_url")]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JScopeLogs {
    #[serde(default)]
    scope: Option<JScope>,
    #[serde(default, deserialize_with = "nullable", alias = "log_records")]
    log_records: Vec<JLogRecord>,
    #[serde(default, deserialize_with = "nullable", alias = "schema_url")]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JLogRecord {
    #[serde(default, deserialize_with = "nullable", alias = "time_unix_nano")]
    time_unix_nano: U64,
    #[serde(default, deserialize_with = "nullable", alias = "observed_time_unix_nano")]
    observed_time_unix_nano: U64,
    #[serde(default, deserialize_with = "nullable", alias = "severity_number")]
    severity_number: Enum,
    #[serde(default, deserialize_with = "nullable", alias = "severity_text")]
    severity_text: String,
    #[serde(default)]
    body: Option<JAnyValue>,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_attributes_count")]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "nullable")]
    flags: u32,
    #[serde(default, deserialize_with = "nullable", alias = "trace_id")]
    trace_id: String,
    #[serde(default, deserialize_with = "nullable", alias = "span_id")]
    span_id: String,
    #[serde(default, deserialize_with = "nullable", alias = "event_name")]
    event_name: String,
}

impl From<JLogsExport> for ExportLogsServiceRequest {
    fn from(j: JLogsExport) -> Self {
        ExportLogsServiceRequest {
            resource_logs: j
                .resource_logs
                .into_iter()
                .map(|rl| ResourceLogs {
                    resource: rl.resource.map(Into::into),
                    scope_logs: rl
                        .scope_logs
                        .into_iter()
                        .map(|sl| ScopeLogs {
                            scope: sl.scope.map(Into::into),
                            log_records: sl.log_records.into_iter().map(Into::into).collect(),
                            schema_url: sl.schema_url,
                        })
                        .collect(),
                    schema_url: rl.schema_url,
                })
                .collect(),
        }
    }
}

impl From<JLogRecord> for LogRecord {
    fn from(j: JLogRecord) -> Self {
        LogRecord {
            time_unix_nano: j.time_unix_nano.0,
            observed_time_unix_nano: j.observed_time_unix_nano.0,
            severity_number: j.severity_number.0,
            severity_text: j.severity_text,
            body: j.body.map(any),
            attributes: kvs(j.attributes),
            dropped_attributes_count: j.dropped_attributes_count,
            flags: j.flags,
            trace_id: hex_id(&j.trace_id),
            span_id: hex_id(&j.span_id),
            event_name: j.event_name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::view::logs_request;
    use llmhub_core::events::read_event;
    use llmhub_core::span::ContextView;
    use llmhub_core::{Outcome, Usage};
    use prost::Message;

    /// The logs export Claude Code 2.1.337 sent, byte for byte, after `claude -p "say hi"`
    /// against a fake Messages API answering input 1234, cache creation 2345, cache read 3456 and
    /// output 456 tokens: nine events, one of them the model request.
    const CLAUDE_CODE: &[u8] = include_bytes!("../../../testdata/coding-agents/claude-code-2.1.337-logs.json");

    fn read(req: &ExportLogsServiceRequest) -> (Vec<llmhub_core::LlmCall>, usize) {
        let (mut calls, mut other) = (Vec::new(), 0);
        for r in logs_request(req) {
            for s in &r.scopes {
                let ctx = ContextView {
                    scope_name: s.scope_name,
                    ..ContextView::new(&r.attributes, "", &[])
                };
                for log in &s.records {
                    match read_event(&ctx, log, &Default::default()) {
                        Outcome::Call(n) => calls.push(n.call),
                        Outcome::NotGenAi => other += 1,
                        Outcome::Rejected(why) => panic!("{why}"),
                    }
                }
            }
        }
        (calls, other)
    }

    #[test]
    fn claude_codes_export_reads_as_one_call_in_json_and_in_protobuf() {
        let req = decode_logs(CLAUDE_CODE).unwrap();
        let from_protobuf = ExportLogsServiceRequest::decode(&req.encode_to_vec()[..]).unwrap();
        for req in [&req, &from_protobuf] {
            let (calls, other) = read(req);
            assert_eq!(other, 8);
            let [c] = &calls[..] else { panic!("{calls:?}") };
            assert_eq!(c.request_model.as_deref(), Some("claude-opus-5-5"));
            assert_eq!(c.service_name, "claude-code");
            assert_eq!(c.scope_name, "com.anthropic.claude_code.events");
            assert_eq!(
                c.usage,
                Some(Usage {
                    input_uncached: 1234,
                    cache_read: 3456,
                    cache_write: 2345,
                    cache_write_1h: 0,
                    output: 456,
                    reasoning: 0,
                })
            );
            // As sent, to the last bit or one off (serde_json's float reading is not correctly
            // rounded; the protobuf copy carries the double it read).
            let reported = c.sdk_reported_cost_usd.unwrap();
            assert!(
                (reported - 0.026_472_199_999_999_998).abs() <= f64::EPSILON * 0.03,
                "{reported}"
            );
            assert_eq!(c.end_unix_nano, 1_796_686_531_840_000_000);
            assert_eq!(c.timings.duration_s, Some(0.038));
            assert_eq!(
                c.agent.conversation_id.as_deref(),
                Some("4a7c8163-07be-4784-9037-61318fdac932")
            );
        }
    }

    /// Codex CLI 0.171.0's logs export after `codex exec "say hi"` against a fake Responses API
    /// answering input 1234 (345 cached), output 456 (78 reasoning), total 1690: 19 records, the
    /// model call among them a `codex.sse_event` for `response.completed` with counts.
    const CODEX: &[u8] = include_bytes!("../../../testdata/coding-agents/codex-0.171.0-logs.json");

    /// Gemini CLI 0.61.0's logs export after `gemini -p "say hi"` against a fake Gemini API: the
    /// router's call (input 111, cached 22, output 33, thoughts 4, total 148) and the main call
    /// (1234, 345, 456, 78, total 1768).
    const GEMINI: &[u8] = include_bytes!("../../../testdata/coding-agents/gemini-cli-0.61.0-logs.json");

    fn usage(input_uncached: u64, cache_read: u64, output: u64, reasoning: u64) -> Option<Usage> {
        Some(Usage {
            input_uncached,
            cache_read,
            output,
            reasoning,
            ..Usage::default()
        })
    }

    #[test]
    fn codexs_export_reads_as_one_call_without_a_duration() {
        let (calls, other) = read(&decode_logs(CODEX).unwrap());
        assert_eq!(other, 18);
        let [c] = &calls[..] else { panic!("{calls:?}") };
        assert_eq!(c.dialect, llmhub_core::Dialect::Codex);
        assert_eq!(c.request_model.as_deref(), Some("gpt-fake-1"));
        assert_eq!(c.provider.as_deref(), Some("openai"));
        assert_eq!(c.service_name, "codex_exec");
        assert_eq!(c.usage, usage(889, 345, 378, 78));
        // Codex's own total (its `tool_token_count`).
        assert_eq!(c.usage.unwrap().total(), 1690);
        assert_eq!(c.timings.duration_s, None);
        assert_eq!(c.timings.ttft_s, Some(0.039));
        assert_eq!(c.end_unix_nano, 1_796_685_960_961_974_092);
        assert_eq!(
            c.agent.conversation_id.as_deref(),
            Some("01a252d4-15f3-7061-9ef2-0a963621aa33")
        );
    }

    #[test]
    fn gemini_clis_export_reads_as_its_two_calls_router_included() {
        let (calls, other) = read(&decode_logs(GEMINI).unwrap());
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(other > 0);
        let (router, main) = (&calls[0], &calls[1]);
        assert_eq!(router.request_model.as_deref(), Some("gemini-3.5-flash-lite"));
        assert_eq!(router.usage, usage(89, 22, 33, 4));
        assert_eq!(router.usage.unwrap().total(), 148);
        assert_eq!(router.timings.duration_s, Some(0.027));
        assert_eq!(main.request_model.as_deref(), Some("gemini-3.8-flash"));
        assert_eq!(main.usage, usage(889, 345, 456, 78));
        // Gemini's own total (`total_token_count`).
        assert_eq!(main.usage.unwrap().total(), 1768);
        assert_eq!(main.timings.duration_s, Some(0.086));
        assert_eq!(main.finish_reasons, vec!["stop", "stop", "stop"]);
        for c in &calls {
            assert_eq!(c.dialect, llmhub_core::Dialect::GeminiCli);
            assert_eq!(c.provider.as_deref(), Some("gcp.gemini"));
            assert_eq!(c.service_name, "gemini-cli");
            assert_eq!(
                c.agent.conversation_id.as_deref(),
                Some("3abcca62-47de-4ca5-836d-b24545c7932b")
            );
        }
        assert_ne!(router.span_id, main.span_id);
        assert_eq!(router.trace_id, main.trace_id, "one prompt");
    }

    #[test]
    fn a_log_record_of_the_wrong_type_names_its_path() {
        let err = decode_logs(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":true}]}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano"),
            "{err}"
        );
    }
}
