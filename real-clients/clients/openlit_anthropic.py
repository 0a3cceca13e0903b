"""anthropic SDK + openlit. Same setup as openlit_openai.py. openlit 1.45 pins an anthropic SDK < 1 (no
built-in SDK spans there), see locks/openlit.txt."""
import os
import sys

from _common import NAME, Runner, setup_tracing


def main() -> int:
    provider = setup_tracing()
    import openlit
    openlit.init(application_name=NAME, service_name=NAME, environment="harness",
                 pricing_json=os.path.join(os.path.dirname(os.path.abspath(__file__)), "openlit_pricing.json"),
                 disable_metrics=True, disable_events=True)
    import _anthropic_flows
    return _anthropic_flows.run(Runner(provider))


if __name__ == "__main__":
    sys.exit(main())
