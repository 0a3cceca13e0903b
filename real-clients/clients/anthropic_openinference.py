"""anthropic SDK + openinference-instrumentation-anthropic.

The anthropic SDK (2.x) also emits its own `anthropic.messages.create` CLIENT spans by default (scope
com.anthropic.sdk.python), so this client shows the duplicate case: set ANTHROPIC_OPEN_TELEMETRY=false
to turn the SDK's spans off (see anthropic_openinference_nosdk.py).
"""
import sys

from _common import Runner, setup_tracing


def main() -> int:
    provider = setup_tracing()
    from openinference.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument(tracer_provider=provider)
    import _anthropic_flows
    return _anthropic_flows.run(Runner(provider))


if __name__ == "__main__":
    sys.exit(main())
