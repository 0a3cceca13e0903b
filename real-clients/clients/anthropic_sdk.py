"""anthropic SDK alone: its built-in OpenTelemetry tracing (on by default in anthropic 2.x whenever a global
tracer provider is set; ANTHROPIC_OPEN_TELEMETRY=false turns it off). No instrumentation package."""
import sys

from _common import Runner, setup_tracing


def main() -> int:
    provider = setup_tracing()
    import _anthropic_flows
    return _anthropic_flows.run(Runner(provider))


if __name__ == "__main__":
    sys.exit(main())
