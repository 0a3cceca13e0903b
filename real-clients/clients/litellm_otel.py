"""litellm SDK (litellm.completion / litellm.embedding) with litellm's built-in "otel" callback.

The callback reuses the global TracerProvider set by _common.setup_tracing(). OpenAI models go through the
openai SDK, Anthropic models through litellm's own HTTP client (so no anthropic-SDK spans here). Tools are given
in the OpenAI format for both providers (litellm translates them).
LITELLM_LOCAL_MODEL_COST_MAP=True (set by run.py) keeps litellm from downloading its price map.
"""
import json
import os
import sys
import time

from _common import (ANTHROPIC_CHAT, ANTHROPIC_STREAM, OPENAI_CHAT, OPENAI_EMBED, OPENAI_REASONING, OPENAI_STREAM,
                     WEATHER_TOOL_OPENAI, Runner, anthropic_base_url, get_weather, openai_base_url, setup_tracing)

FLOWS = ("chat", "reasoning", "stream", "tool", "error", "embeddings",
         "anthropic_chat", "anthropic_stream", "anthropic_tool", "anthropic_error")


def main() -> int:
    provider = setup_tracing()
    import litellm
    litellm.callbacks = ["otel"]
    litellm.num_retries = 0

    def oa(flow, model, fail=None):
        return {"model": f"openai/{model}", "api_base": openai_base_url(flow, fail), "api_key": "sk-fake-harness",
                "max_retries": 0}

    def an(flow, model, fail=None):
        return {"model": f"anthropic/{model}", "api_base": anthropic_base_url(flow, fail),
                "api_key": "sk-ant-fake-harness", "max_retries": 0}

    def chat(kw, prompt="Say hello."):
        r = litellm.completion(messages=[{"role": "user", "content": prompt}], **kw)
        assert r.usage.total_tokens > 0
        return r.choices[0].message.content

    def stream(kw):
        text = ""
        for chunk in litellm.completion(messages=[{"role": "user", "content": "Stream a hello."}], stream=True,
                                        stream_options={"include_usage": True}, **kw):
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        assert text
        return text

    def tool(kw):
        msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
        r1 = litellm.completion(messages=msgs, tools=[WEATHER_TOOL_OPENAI], **kw)
        tc = r1.choices[0].message.tool_calls[0]
        msgs.append(r1.choices[0].message.model_dump(exclude_none=True))
        msgs.append({"role": "tool", "tool_call_id": tc.id,
                     "content": get_weather(**json.loads(tc.function.arguments))})
        r2 = litellm.completion(messages=msgs, tools=[WEATHER_TOOL_OPENAI], **kw)
        return r2.choices[0].message.content

    def embeddings():
        r = litellm.embedding(input=["The quick brown fox."], **oa("embeddings", OPENAI_EMBED))
        return r.usage.prompt_tokens

    fns = {
        "chat": lambda: chat(oa("chat", OPENAI_CHAT)),
        "reasoning": lambda: chat(oa("reasoning", OPENAI_REASONING)),
        "stream": lambda: stream(oa("stream", OPENAI_STREAM)),
        "tool": lambda: tool(oa("tool", OPENAI_CHAT)),
        "error": lambda: chat(oa("error", OPENAI_CHAT, fail=429)),
        "embeddings": embeddings,
        "anthropic_chat": lambda: chat(an("anthropic_chat", ANTHROPIC_CHAT)),
        "anthropic_stream": lambda: stream(an("anthropic_stream", ANTHROPIC_STREAM)),
        "anthropic_tool": lambda: tool(an("anthropic_tool", ANTHROPIC_CHAT)),
        "anthropic_error": lambda: chat(an("anthropic_error", ANTHROPIC_CHAT, fail=529)),
    }
    runner = Runner(provider)
    for name in FLOWS:
        runner.flow(name, fns[name], expect_error=name.endswith("error"))
    # litellm logs (and so ends its spans) from a background worker: give it time before the flush.
    time.sleep(float(os.environ.get("HARNESS_LITELLM_SETTLE", "2")))
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
