"""Same as openai_v2, with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (latest GenAI semconv)."""
import os
import sys

os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"

import openai_v2  # noqa: E402

if __name__ == "__main__":
    sys.exit(openai_v2.main())
