"""openai SDK + openlit (openlit.init() auto-instruments everything it finds).

openlit reuses the global TracerProvider set up by _common.setup_tracing(). Its pricing comes from
openlit_pricing.json (the default fetches a JSON from the internet). openlit 1.45 requires openai<3, so this
venv has an older openai SDK than the others (see locks/openlit.txt).
"""
import os
import sys

from _common import NAME, Runner, setup_tracing


def main() -> int:
    provider = setup_tracing()
    import openlit
    openlit.init(application_name=NAME, service_name=NAME, environment="harness",
                 pricing_json=os.path.join(os.path.dirname(os.path.abspath(__file__)), "openlit_pricing.json"),
                 disable_metrics=True, disable_events=True)
    import _openai_flows
    return _openai_flows.run(Runner(provider))


if __name__ == "__main__":
    sys.exit(main())
