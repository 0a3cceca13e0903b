//! The content policy ([`llmhub_content::ContentPolicy`]) applied to a request before it is
//! forwarded: content attributes of spans, span events and links removed (the default) or
//! redacted, content events removed. Resource and scope attributes are metadata and stay.

use llmhub_content::{ContentPolicy, Tally, Verdict};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use std::borrow::Cow;

/// What applying the policy to one request did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Attributes removed.
    pub attributes_removed: u64,
    /// Span events removed whole.
    pub events_removed: u64,
    /// Matches masked or hashed, by rule name.
    pub tally: Tally,
}

/// Applies `policy` to every span of `req`.
pub fn apply(req: &mut ExportTraceServiceRequest, policy: &ContentPolicy) -> Applied {
    let mut out = Applied::default();
    if !policy.changes_spans() {
        return out;
    }
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                attributes(&mut span.attributes, policy, &mut out);
                let before = span.events.len();
                span.events.retain(|e| !policy.drops_event(&e.name));
                out.events_removed += (before - span.events.len()) as u64;
                for e in &mut span.events {
                    attributes(&mut e.attributes, policy, &mut out);
                }
                for l in &mut span.links {
                    attributes(&mut l.attributes, policy, &mut out);
                }
            }
        }
    }
    out
}

fn attributes(attrs: &mut Vec<KeyValue>, policy: &ContentPolicy, out: &mut Applied) {
    let before = attrs.len();
    attrs.retain_mut(|kv| {
        if !policy.touches(&kv.key) {
            return true;
        }
        match kv.value.as_mut() {
            Some(v) => value(&kv.key, v, policy, &mut out.tally),
            None => true,
        }
    });
    out.attributes_removed += (before - attrs.len()) as u64;
}

/// Redacts the strings of one value (nested arrays and key-value lists included); false when the
/// attribute goes. Without capture every value of a content key goes, strings or not.
fn value(key: &str, v: &mut AnyValue, policy: &ContentPolicy, tally: &mut Tally) -> bool {
    if !policy.captures() {
        return false;
    }
    match v.value.as_mut() {
        Some(Value::StringValue(s)) => match policy.string(key, s, tally) {
            Verdict::Drop => false,
            Verdict::Keep(Cow::Borrowed(_)) => true,
            Verdict::Keep(Cow::Owned(new)) => {
                *s = new;
                true
            }
        },
        Some(Value::ArrayValue(a)) => a.values.iter_mut().all(|item| value(key, item, policy, tally)),
        Some(Value::KvlistValue(l)) => l
            .values
            .iter_mut()
            .all(|kv| kv.value.as_mut().is_none_or(|item| value(key, item, policy, tally))),
        // Bytes may hold text too; no rule can read them, so they go when rules apply.
        Some(Value::BytesValue(_)) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmhub_content::ContentConfig;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::trace::v1::span::Event;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use crate::forward::enrich::{kv, string as s};

    fn request() -> ExportTraceServiceRequest {
        let span = Span {
            name: "chat gpt-4o".into(),
            attributes: vec![
                s("gen_ai.request.model", "gpt-4o"),
                s("gen_ai.prompt.0.role", "user"),
                s("gen_ai.prompt.0.content", "mail me at a@b.io"),
                kv(
                    "gen_ai.input.messages",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Value::StringValue("call +14155552671".into())),
                        }],
                    }),
                ),
                kv("gen_ai.usage.input_tokens", Value::IntValue(12)),
            ],
            events: vec![
                Event {
                    name: "gen_ai.content.prompt".into(),
                    attributes: vec![s("gen_ai.prompt", "hello a@b.io")],
                    ..Default::default()
                },
                Event {
                    name: "exception".into(),
                    attributes: vec![s("exception.message", "timeout")],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn keys(req: &ExportTraceServiceRequest) -> Vec<String> {
        req.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .iter()
            .map(|a| a.key.clone())
            .collect()
    }

    #[test]
    fn by_default_content_goes_and_the_rest_stays_in_order() {
        let mut req = request();
        let applied = apply(&mut req, &ContentPolicy::default());
        assert_eq!(
            keys(&req),
            [
                "gen_ai.request.model",
                "gen_ai.prompt.0.role",
                "gen_ai.usage.input_tokens"
            ]
        );
        let events = &req.resource_spans[0].scope_spans[0].spans[0].events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "exception");
        assert_eq!(applied.attributes_removed, 2);
        assert_eq!(applied.events_removed, 1);
    }

    #[test]
    fn captured_content_is_redacted_in_nested_values() {
        let cfg: ContentConfig = serde_json::from_str(
            r#"{"capture": true, "redact": [{"builtin": "email", "action": "mask"}, {"builtin": "phone", "action": "mask"}]}"#,
        )
        .expect("config");
        let policy = ContentPolicy::new(&cfg, "content").expect("policy");
        let mut req = request();
        let applied = apply(&mut req, &policy);
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.attributes.len(), 5);
        assert_eq!(
            span.attributes[2],
            s("gen_ai.prompt.0.content", "mail me at [REDACTED:email]")
        );
        assert_eq!(
            span.attributes[3].value.as_ref().and_then(|v| v.value.clone()),
            Some(Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue("call [REDACTED:phone]".into()))
                }]
            }))
        );
        assert_eq!(
            span.events[0].attributes[0],
            s("gen_ai.prompt", "hello [REDACTED:email]")
        );
        assert_eq!(
            applied.tally.redacted,
            vec![("email".to_owned(), 2), ("phone".to_owned(), 1)]
        );
        assert_eq!(applied.attributes_removed, 0);
    }
}
