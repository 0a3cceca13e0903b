//! Keys whose value needs parsing: Langfuse usage details, Vercel provider metadata, LiteLLM's
//! usage object (a Python literal), SDK-reported cost.

use super::*;

/// Keys of Langfuse `usage_details` JSON. Langfuse buckets are disjoint (`input` excludes cache
/// reads and writes, `output` excludes reasoning); they are summed here into the inclusive totals the
/// rest of normalization expects. Within one bucket the names are alternatives (the first present
/// wins), except cache writes, where the 5-minute and 1-hour parts, when present, replace a total.
pub(super) static LANGFUSE_INPUT: &[&str] = &["input"];
pub(super) static LANGFUSE_OUTPUT: &[&str] = &["output"];
pub(super) static LANGFUSE_CACHE_READ: &[&str] =
    &["input_cached_tokens", "input_cache_read", "cache_read_input_tokens"];
pub(super) static LANGFUSE_CACHE_WRITE: &[&str] = &["input_cache_creation", "cache_creation_input_tokens"];
pub(super) static LANGFUSE_CACHE_WRITE_PARTS: &[&str] = &["input_cache_creation_5m", "input_cache_creation_1h"];
pub(super) static LANGFUSE_REASONING: &[&str] = &["output_reasoning_tokens", "output_reasoning"];

/// JSON pointers into Vercel's `ai.response.providerMetadata`, by field.
pub(super) static PROVIDER_METADATA_KEYS: &[(&str, Field)] = &[
    ("/anthropic/cacheReadInputTokens", Field::CacheReadTokens),
    ("/anthropic/cacheCreationInputTokens", Field::CacheWriteTokens),
    ("/anthropic/usage/cache_read_input_tokens", Field::CacheReadTokens),
    ("/anthropic/usage/cache_creation_input_tokens", Field::CacheWriteTokens),
    (
        "/anthropic/usage/cache_creation/ephemeral_1h_input_tokens",
        Field::CacheWrite1hTokens,
    ),
    ("/openai/cachedPromptTokens", Field::CacheReadTokens),
    ("/openai/reasoningTokens", Field::ReasoningTokens),
    ("/bedrock/usage/cacheReadInputTokens", Field::CacheReadTokens),
    ("/bedrock/usage/cacheWriteInputTokens", Field::CacheWriteTokens),
];

/// Where LiteLLM's `metadata.usage_object` keeps each count (the first present wins, in order).
pub(super) static LITELLM_USAGE_KEYS: &[(&str, Field)] = &[
    ("/prompt_tokens", Field::InputTokens),
    ("/completion_tokens", Field::OutputTokens),
    ("/prompt_tokens_details/cached_tokens", Field::CacheReadTokens),
    ("/cache_read_input_tokens", Field::CacheReadTokens),
    ("/prompt_tokens_details/cache_write_tokens", Field::CacheWriteTokens),
    ("/prompt_tokens_details/cache_creation_tokens", Field::CacheWriteTokens),
    ("/cache_creation_input_tokens", Field::CacheWriteTokens),
    (
        "/prompt_tokens_details/cache_creation_token_details/ephemeral_1h_input_tokens",
        Field::CacheWrite1hTokens,
    ),
    ("/completion_tokens_details/reasoning_tokens", Field::ReasoningTokens),
];

/// A Python literal of dicts, lists, numbers, strings, `None`, `True` and `False` (what `repr` of
/// a usage dict prints) as JSON; `None` when it is not one.
pub(super) fn python_literal_as_json(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // A string: copied with JSON quoting.
                out.push('"');
                loop {
                    let d = chars.next()?;
                    match d {
                        _ if d == c => break,
                        '\\' => {
                            out.push('\\');
                            out.push(chars.next()?);
                        }
                        '"' => out.push_str("\\\""),
                        _ => out.push(d),
                    }
                }
                out.push('"');
            }
            // An exponent (1e-05).
            'e' | 'E' if out.ends_with(|p: char| p.is_ascii_digit()) => out.push(c),
            c if c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if !d.is_ascii_alphanumeric() && d != '_' {
                        break;
                    }
                    word.push(d);
                    chars.next();
                }
                out.push_str(match word.as_str() {
                    "None" => "null",
                    "True" => "true",
                    "False" => "false",
                    _ => return None,
                });
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

/// Rank given to values read from structured keys and events: below every plain key.
pub(super) const STRUCTURED_RANK: u8 = 20;

/// Reads a key whose value needs parsing; returns whether `key` is one of them.
pub(super) fn read_structured<'a>(key: &'a str, value: &Value<'a>, span: &SpanView<'a>, f: &mut Fields<'a>) -> bool {
    match key {
        "gen_ai.usage.cost.amount" => {
            // Provider-reported cost (a GenAI conventions proposal): read in USD only.
            let currency = find(&span.attributes, "gen_ai.usage.cost.currency").and_then(Value::as_str);
            if currency.is_none_or(|c| c.trim().eq_ignore_ascii_case("usd")) {
                if let Some(s) = to_scalar(value, Unit::Plain) {
                    f.offer(Field::SdkCost, STRUCTURED_RANK, key, s);
                }
            }
        }
        "langfuse.observation.usage_details" => {
            let Some(obj) = value
                .as_str()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            else {
                return true;
            };
            let Some(map) = obj.as_object() else { return true };
            let first = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| map.get(*n).and_then(serde_json::Value::as_f64))
            };
            let parts: Vec<f64> = LANGFUSE_CACHE_WRITE_PARTS
                .iter()
                .filter_map(|n| map.get(*n)?.as_f64())
                .collect();
            let cache_write = if parts.is_empty() {
                first(LANGFUSE_CACHE_WRITE)
            } else {
                Some(parts.iter().sum())
            };
            if let Some(h) = map.get("input_cache_creation_1h").and_then(serde_json::Value::as_f64) {
                f.offer(Field::CacheWrite1hTokens, STRUCTURED_RANK, key, Scalar::Num(h));
            }
            let (input, output) = (first(LANGFUSE_INPUT), first(LANGFUSE_OUTPUT));
            let (cache_read, reasoning) = (first(LANGFUSE_CACHE_READ), first(LANGFUSE_REASONING));
            let cached = cache_read.unwrap_or(0.0) + cache_write.unwrap_or(0.0);
            let fields = [
                (Field::InputTokens, input.map(|i| i + cached)),
                (Field::OutputTokens, output.map(|o| o + reasoning.unwrap_or(0.0))),
                (Field::CacheReadTokens, cache_read),
                (Field::CacheWriteTokens, cache_write),
                (Field::ReasoningTokens, reasoning),
            ];
            for (field, value) in fields {
                if let Some(n) = value {
                    f.offer(field, STRUCTURED_RANK, key, Scalar::Num(n));
                }
            }
        }
        "langfuse.observation.cost_details" => {
            let Some(obj) = value
                .as_str()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            else {
                return true;
            };
            let total = obj.get("total").and_then(|t| t.as_f64()).or_else(|| {
                obj.as_object()
                    .map(|m| m.values().filter_map(|v| v.as_f64()).sum::<f64>())
            });
            if let Some(t) = total {
                f.offer(Field::SdkCost, STRUCTURED_RANK, key, Scalar::Num(t));
            }
        }
        "langfuse.observation.completion_start_time" => {
            if let Some(t) = value.as_str().and_then(rfc3339_to_unix_nanos) {
                if t >= span.start_unix_nano {
                    let s = (t - span.start_unix_nano) as f64 / 1e9;
                    f.offer(Field::Ttft, STRUCTURED_RANK, key, Scalar::Num(s));
                }
            }
        }
        "ai.response.providerMetadata" => {
            // Vercel AI SDK v4/v5 pass provider-specific usage here (Anthropic cache tokens are
            // not in ai.usage.* before v5).
            let Some(obj) = value
                .as_str()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            else {
                return true;
            };
            for (pointer, field) in PROVIDER_METADATA_KEYS {
                if let Some(n) = obj.pointer(pointer).and_then(serde_json::Value::as_f64) {
                    f.offer(*field, STRUCTURED_RANK, key, Scalar::Num(n));
                }
            }
        }
        "metadata.usage_object" => {
            // LiteLLM's OpenTelemetry callback: the provider's usage as a Python dict literal,
            // OpenAI-shaped (prompt_tokens inclusive of cache reads and writes).
            let Some(obj) = value
                .as_str()
                .and_then(python_literal_as_json)
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            else {
                return true;
            };
            for (pointer, field) in LITELLM_USAGE_KEYS {
                if let Some(n) = obj.pointer(pointer).and_then(serde_json::Value::as_f64) {
                    f.offer(*field, STRUCTURED_RANK, key, Scalar::Num(n));
                }
            }
        }
        "llm.invocation_parameters" => {
            let Some(obj) = value
                .as_str()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            else {
                return true;
            };
            if let Some(b) = obj.get("stream").and_then(|v| v.as_bool()) {
                f.offer(Field::Streaming, STRUCTURED_RANK, key, Scalar::Bool(b));
            }
        }
        _ => {
            // OpenLLMetry: gen_ai.completion.<n>.finish_reason
            let Some(rest) = key.strip_prefix("gen_ai.completion.") else {
                return false;
            };
            {
                if let Some((idx, "finish_reason")) = rest.split_once('.') {
                    if idx.bytes().all(|b| b.is_ascii_digit()) {
                        if let Some(s) = value.as_str() {
                            // Appended in place (never re-copied), at most MAX_FINISH_REASONS.
                            let slot = &mut f.best[Field::FinishReasons.index()];
                            match slot {
                                Some(Candidate {
                                    rank: STRUCTURED_RANK,
                                    value: Scalar::List(l),
                                    ..
                                }) => {
                                    if l.len() < MAX_FINISH_REASONS {
                                        l.push(s.to_owned());
                                    }
                                }
                                None => {
                                    *slot = Some(Candidate {
                                        rank: STRUCTURED_RANK,
                                        key,
                                        value: Scalar::List(vec![s.to_owned()]),
                                    })
                                }
                                Some(_) => {}
                            }
                        }
                    }
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_usage_literals_read_as_json() {
        let lit =
            "{'completion_tokens': 858, 'prompt_tokens': 4317, 'cost': 1e-05, 'completion_tokens_details': None, \
                   'prompt_tokens_details': {'cached_tokens': 2944, 'ok': True, 'name': \"it's\"}}";
        let json: serde_json::Value =
            serde_json::from_str(&python_literal_as_json(lit).expect("a literal")).expect("JSON");
        assert_eq!(json["prompt_tokens_details"]["cached_tokens"], 2944);
        assert_eq!(json["completion_tokens_details"], serde_json::Value::Null);
        assert_eq!(json["prompt_tokens_details"]["ok"], true);
        assert_eq!(json["prompt_tokens_details"]["name"], "it's");
        assert_eq!(json["cost"], 1e-05);
        assert_eq!(python_literal_as_json("{'a': os.system}"), None);
        assert_eq!(python_literal_as_json("{'a': 'unterminated"), None);
    }
}
