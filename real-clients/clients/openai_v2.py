"""openai SDK + opentelemetry-instrumentation-openai-v2 (the official OpenTelemetry instrumentation).

util-genai >= 1.0 always uses the latest (experimental) GenAI semconv; OTEL_SEMCONV_STABILITY_OPT_IN changes nothing.
It wraps chat.completions and embeddings only (no Responses API), so those are the flows run.
"""
import sys

from _common import Runner, setup_tracing


def main() -> int:
    provider = setup_tracing()
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    import _openai_flows
    return _openai_flows.run(Runner(provider), ("chat", "reasoning", "stream", "tool", "error", "embeddings"))


if __name__ == "__main__":
    sys.exit(main())
