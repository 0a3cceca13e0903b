"""openai SDK + opentelemetry-instrumentation-openai-v2 (the official OpenTelemetry instrumentation).

Legacy semconv (v1.30) unless OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (see openai_v2_latest.py).
The instrumentation covers chat.completions and embeddings, not the Responses API.
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
