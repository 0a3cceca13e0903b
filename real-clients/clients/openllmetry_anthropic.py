"""anthropic SDK + opentelemetry-instrumentation-anthropic (Traceloop / OpenLLMetry).

The anthropic SDK (2.x) also emits its own `anthropic.messages.create` spans by default, so this shows the
duplicate case too (ANTHROPIC_OPEN_TELEMETRY=false turns the SDK's off).
"""
import sys

from _common import Runner, setup_tracing


def main() -> int:
    provider = setup_tracing()
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument(tracer_provider=provider)
    import _anthropic_flows
    return _anthropic_flows.run(Runner(provider))


if __name__ == "__main__":
    sys.exit(main())
