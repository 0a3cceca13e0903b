"""The OpenAI-SDK flows shared by the openai-based clients (plain `openai` SDK calls, sync)."""

from __future__ import annotations

import json

import openai

from _common import (OPENAI_CHAT, OPENAI_EMBED, OPENAI_REASONING, OPENAI_STREAM, WEATHER_TOOL_OPENAI,
                     Runner, get_weather, openai_base_url)

ALL_FLOWS = ("chat", "reasoning", "stream", "tool", "error", "embeddings", "responses", "responses_stream")


def _client(flow: str, fail: int | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=openai_base_url(flow, fail), api_key="sk-fake-harness", max_retries=0)


def chat():
    r = _client("chat").chat.completions.create(
        model=OPENAI_CHAT, messages=[{"role": "user", "content": "Say hello."}])
    assert r.usage and r.choices[0].message.content
    return r.id


def reasoning():
    r = _client("reasoning").chat.completions.create(
        model=OPENAI_REASONING, messages=[{"role": "user", "content": "Think, then say hello."}])
    assert r.usage.completion_tokens_details.reasoning_tokens > 0
    return r.id


def stream():
    s = _client("stream").chat.completions.create(
        model=OPENAI_STREAM, messages=[{"role": "user", "content": "Stream a hello."}],
        stream=True, stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in s:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    assert text and usage
    return text


def tool():
    c = _client("tool")
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    r1 = c.chat.completions.create(model=OPENAI_CHAT, messages=msgs, tools=[WEATHER_TOOL_OPENAI])
    assert r1.choices[0].finish_reason == "tool_calls", r1.choices[0].finish_reason
    tc = r1.choices[0].message.tool_calls[0]
    msgs.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": tc.id, "type": "function", "function": {"name": tc.function.name, "arguments": tc.function.arguments}}]})
    msgs.append({"role": "tool", "tool_call_id": tc.id, "content": get_weather(**json.loads(tc.function.arguments))})
    r2 = c.chat.completions.create(model=OPENAI_CHAT, messages=msgs, tools=[WEATHER_TOOL_OPENAI])
    assert r2.choices[0].finish_reason == "stop", r2.choices[0].finish_reason
    return r2.choices[0].message.content


def error():
    _client("error", fail=429).chat.completions.create(
        model=OPENAI_CHAT, messages=[{"role": "user", "content": "This one is rate limited."}])


def embeddings():
    r = _client("embeddings").embeddings.create(model=OPENAI_EMBED, input="The quick brown fox.")
    assert r.usage.prompt_tokens > 0 and r.data[0].embedding
    return r.usage.prompt_tokens


def responses():
    r = _client("responses").responses.create(model=OPENAI_REASONING, input="Think, then say hello.")
    assert r.usage and r.output_text
    return r.id


def responses_stream():
    s = _client("responses_stream").responses.create(model=OPENAI_CHAT, input="Stream a hello.", stream=True)
    usage = None
    for ev in s:
        if ev.type == "response.completed":
            usage = ev.response.usage
    assert usage
    return usage.total_tokens


FLOWS = {"chat": chat, "reasoning": reasoning, "stream": stream, "tool": tool, "error": error,
         "embeddings": embeddings, "responses": responses, "responses_stream": responses_stream}


def run(runner: Runner, flows=ALL_FLOWS) -> int:
    for name in flows:
        runner.flow(name, FLOWS[name], expect_error=(name == "error"))
    return runner.finish()
