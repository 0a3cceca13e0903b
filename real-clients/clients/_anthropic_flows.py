"""The Anthropic-SDK flows shared by the anthropic-based clients (plain `anthropic` SDK calls, sync)."""

from __future__ import annotations

import anthropic

from _common import (ANTHROPIC_CHAT, ANTHROPIC_STREAM, WEATHER_TOOL_ANTHROPIC, Runner, anthropic_base_url,
                     get_weather)

ALL_FLOWS = ("chat", "stream", "stream_helper", "tool", "error")


def _client(flow: str, fail: int | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=anthropic_base_url(flow, fail), api_key="sk-ant-fake-harness",
                               max_retries=0)


def chat():
    r = _client("chat").messages.create(model=ANTHROPIC_CHAT, max_tokens=1024,
                                        messages=[{"role": "user", "content": "Say hello."}])
    assert r.usage.cache_read_input_tokens and r.content[0].text
    return r.id


def stream():
    """messages.create(stream=True): raw events."""
    s = _client("stream").messages.create(model=ANTHROPIC_STREAM, max_tokens=1024, stream=True,
                                          messages=[{"role": "user", "content": "Stream a hello."}])
    text, out = "", None
    for ev in s:
        if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
            text += ev.delta.text
        elif ev.type == "message_delta":
            out = ev.usage.output_tokens
    assert text and out
    return text


def stream_helper():
    """messages.stream(...) context manager: the SDK's accumulating helper."""
    with _client("stream_helper").messages.stream(
            model=ANTHROPIC_STREAM, max_tokens=1024,
            messages=[{"role": "user", "content": "Stream a hello with the helper."}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.usage.output_tokens
    return final.id


def tool():
    c = _client("tool")
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    r1 = c.messages.create(model=ANTHROPIC_CHAT, max_tokens=1024, messages=msgs, tools=[WEATHER_TOOL_ANTHROPIC])
    assert r1.stop_reason == "tool_use", r1.stop_reason
    use = next(b for b in r1.content if b.type == "tool_use")
    msgs.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r1.content]})
    msgs.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": use.id, "content": get_weather(**use.input)}]})
    r2 = c.messages.create(model=ANTHROPIC_CHAT, max_tokens=1024, messages=msgs, tools=[WEATHER_TOOL_ANTHROPIC])
    assert r2.stop_reason == "end_turn", r2.stop_reason
    return r2.content[0].text


def error():
    _client("error", fail=529).messages.create(model=ANTHROPIC_CHAT, max_tokens=1024,
                                               messages=[{"role": "user", "content": "This one is overloaded."}])


FLOWS = {"chat": chat, "stream": stream, "stream_helper": stream_helper, "tool": tool, "error": error}


def run(runner: Runner, flows=ALL_FLOWS) -> int:
    for name in flows:
        runner.flow(name, FLOWS[name], expect_error=(name == "error"))
    return runner.finish()
