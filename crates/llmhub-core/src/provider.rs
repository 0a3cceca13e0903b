//! Provider names: every spelling seen in the dialects mapped to the well-known values of
//! `gen_ai.provider.name` (OpenTelemetry semantic conventions v1.37+), and model-name normalization.

use std::borrow::Cow;

/// Alias → well-known provider name. Lookups are case-insensitive.
pub static PROVIDER_ALIASES: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("openai.chat", "openai"),
    ("openai.responses", "openai"),
    ("openai.completion", "openai"),
    ("openai.embedding", "openai"),
    ("anthropic", "anthropic"),
    ("anthropic.messages", "anthropic"),
    ("aws.bedrock", "aws.bedrock"),
    ("aws_bedrock", "aws.bedrock"),
    ("bedrock", "aws.bedrock"),
    ("amazon-bedrock", "aws.bedrock"),
    ("amazon_bedrock", "aws.bedrock"),
    ("azure.ai.openai", "azure.ai.openai"),
    ("azure_openai", "azure.ai.openai"),
    ("azure-openai", "azure.ai.openai"),
    ("azure", "azure.ai.openai"),
    ("azure.ai.inference", "azure.ai.inference"),
    ("az.ai.inference", "azure.ai.inference"),
    ("az.ai.openai", "azure.ai.openai"),
    ("gcp.gemini", "gcp.gemini"),
    ("gemini", "gcp.gemini"),
    ("google", "gcp.gen_ai"),
    ("google.ai.studio", "gcp.gemini"),
    ("google_genai", "gcp.gemini"),
    ("google.generative-ai", "gcp.gemini"),
    ("google-generative-ai", "gcp.gemini"),
    ("gcp.vertex_ai", "gcp.vertex_ai"),
    ("vertex_ai", "gcp.vertex_ai"),
    ("vertexai", "gcp.vertex_ai"),
    ("google.vertex", "gcp.vertex_ai"),
    ("google-vertex", "gcp.vertex_ai"),
    ("vertex", "gcp.vertex_ai"),
    ("gcp.gen_ai", "gcp.gen_ai"),
    ("mistral_ai", "mistral_ai"),
    ("mistralai", "mistral_ai"),
    ("mistral", "mistral_ai"),
    ("x_ai", "x_ai"),
    ("xai", "x_ai"),
    ("deepseek", "deepseek"),
    ("cohere", "cohere"),
    ("groq", "groq"),
    ("perplexity", "perplexity"),
    ("ibm.watsonx.ai", "ibm.watsonx.ai"),
    ("ibm.watson.ai", "ibm.watsonx.ai"),
    ("watsonx", "ibm.watsonx.ai"),
    ("aws", "aws.bedrock"),
    ("moonshot", "moonshot_ai"),
    ("moonshot_ai", "moonshot_ai"),
    ("cerebras", "cerebras"),
    ("aleph_alpha", "aleph_alpha"),
    ("alephalpha", "aleph_alpha"),
    ("replicate", "replicate"),
    ("hugging_face", "huggingface"),
    ("ollama", "ollama"),
    ("together", "together_ai"),
    ("together_ai", "together_ai"),
    ("togetherai", "together_ai"),
    ("fireworks", "fireworks_ai"),
    ("fireworks_ai", "fireworks_ai"),
    ("huggingface", "huggingface"),
    ("openrouter", "openrouter"),
];

/// Maps a provider name as emitted to its well-known value: exact alias first, then the part before
/// the first `.` (Vercel's `openai.chat`, `mistral.chat`), else the lower-cased input unchanged.
pub fn canonical_provider(raw: &str) -> Cow<'_, str> {
    let lower = lower_trimmed(raw);
    if let Some(v) = lookup(&lower) {
        return Cow::Borrowed(v);
    }
    if let Some((head, _)) = lower.split_once('.') {
        if let Some(v) = lookup(head) {
            return Cow::Borrowed(v);
        }
    }
    lower
}

/// `raw` trimmed and in ASCII lower case, copied only when it has upper-case letters.
pub fn lower_trimmed(raw: &str) -> Cow<'_, str> {
    let t = crate::normalize::trimmed(raw);
    if t.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(t.to_ascii_lowercase())
    } else {
        Cow::Borrowed(t)
    }
}

fn lookup(name: &str) -> Option<&'static str> {
    PROVIDER_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, v)| *v)
}

/// Model-name prefixes that identify the provider when no attribute names it (Langfuse generations,
/// some OpenInference spans). Checked in order against the normalized model; the first match wins.
pub static MODEL_PREFIX_PROVIDERS: &[(&str, &str)] = &[
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1-", "openai"),
    ("o3-", "openai"),
    ("o4-", "openai"),
    ("text-embedding-00", "gcp.gen_ai"),
    ("text-embedding-", "openai"),
    ("dall-e", "openai"),
    ("whisper-", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "gcp.gen_ai"),
    ("mistral-", "mistral_ai"),
    ("ministral-", "mistral_ai"),
    ("magistral-", "mistral_ai"),
    ("codestral-", "mistral_ai"),
    ("pixtral-", "mistral_ai"),
    ("command-", "cohere"),
    ("embed-english-", "cohere"),
    ("embed-multilingual-", "cohere"),
    ("grok-", "x_ai"),
    ("deepseek-", "deepseek"),
];

/// The provider a normalized model name implies, if its prefix is well known.
pub fn provider_from_model(normalized_model: &str) -> Option<&'static str> {
    if matches!(normalized_model, "o1" | "o3" | "o4-mini" | "o3-mini" | "o1-mini") {
        return Some("openai");
    }
    MODEL_PREFIX_PROVIDERS
        .iter()
        .find(|(p, _)| normalized_model.starts_with(p))
        .map(|(_, v)| *v)
}

/// The model name used to group calls: lower-cased, trimmed, with a leading `models/` (Gemini) or
/// `<provider>/` (LiteLLM, OpenRouter) segment removed. Price matching (issue 3) refines this.
pub fn normalize_model(raw: &str) -> String {
    let mut m = raw.trim().to_ascii_lowercase();
    if let Some(rest) = m.strip_prefix("models/") {
        m = rest.to_owned();
    }
    if let Some((head, rest)) = m.split_once('/') {
        if !rest.is_empty() && lookup(head).is_some() {
            m = rest.to_owned();
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_aliases() {
        assert_eq!(canonical_provider("OpenAI"), "openai");
        assert_eq!(canonical_provider("openai.chat"), "openai");
        assert_eq!(canonical_provider("anthropic.messages"), "anthropic");
        assert_eq!(canonical_provider("az.ai.inference"), "azure.ai.inference");
        assert_eq!(canonical_provider("mistral.chat"), "mistral_ai");
        assert_eq!(canonical_provider("google.generative-ai"), "gcp.gemini");
        assert_eq!(canonical_provider("xai"), "x_ai");
        assert_eq!(canonical_provider("my-gateway"), "my-gateway");
    }

    #[test]
    fn infers_providers_from_model_names() {
        assert_eq!(provider_from_model("claude-sonnet-4-5-20250929"), Some("anthropic"));
        assert_eq!(provider_from_model("gpt-4.1-mini"), Some("openai"));
        assert_eq!(provider_from_model("o3"), Some("openai"));
        assert_eq!(provider_from_model("text-embedding-005"), Some("gcp.gen_ai"));
        assert_eq!(provider_from_model("text-embedding-3-small"), Some("openai"));
        assert_eq!(provider_from_model("llama-3.1-70b"), None);
    }

    #[test]
    fn normalizes_models() {
        assert_eq!(normalize_model("GPT-4o-2024-08-06"), "gpt-4o-2024-08-06");
        assert_eq!(normalize_model("models/gemini-1.5-pro"), "gemini-1.5-pro");
        assert_eq!(normalize_model("openai/gpt-4o"), "gpt-4o");
        assert_eq!(normalize_model("meta-llama/Llama-3-70b"), "meta-llama/llama-3-70b");
        assert_eq!(
            normalize_model("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1:0"
        );
    }
}
