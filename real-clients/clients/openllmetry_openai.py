"""openai SDK + opentelemetry-instrumentation-openai (Traceloop / OpenLLMetry)."""
import sys

from _common import Runner, setup_tracing


def main() -> int:
    provider = setup_tracing()
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    import _openai_flows
    return _openai_flows.run(Runner(provider))


if __name__ == "__main__":
    sys.exit(main())
