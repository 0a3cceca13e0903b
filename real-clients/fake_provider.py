#!/usr/bin/env python3
"""Fake OpenAI / Anthropic model provider for the real-client harness (stdlib only).

It answers on 127.0.0.1 with the wire shapes of the real APIs, chooses token counts
deterministically per request, and appends one ground-truth JSON line per answered
request to the file named by FAKE_PROVIDER_LOG (see README.md, "Ground truth").

Usage:
    python3 fake_provider.py [PORT]        # PORT (or env FAKE_PROVIDER_PORT), 0 = pick one
First stdout line is always `PORT=<n>`.

Routes (an optional tag prefix `/x/<k=v,k=v,...>` may precede each of them):
    POST /v1/chat/completions   (OpenAI Chat Completions, stream or not, tools)
    POST /v1/embeddings         (OpenAI embeddings, float or base64)
    POST /v1/responses          (OpenAI Responses API, stream or not, tools)
    POST /v1/messages           (Anthropic Messages, stream or not, tools)
    POST /v1beta/models/<model>:generateContent and :streamGenerateContent?alt=sse
                                (Gemini API, text or the JSON its generationConfig's schema asks for)
    GET  /v1/models             (minimal list, for frameworks that probe)
    GET  /_health               (liveness, not logged)

Tag keys: client, flow (copied into the ground-truth line), fail (an HTTP status: 429,
500, 529, ... answered as the provider's error). The same can be given as the headers
X-Fake-Client, X-Fake-Flow, X-Fake-Fail, or (fail only) as the text `FAKE_FAIL=<status>`
anywhere in the request body.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

OPENAI_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
TAG_RE = re.compile(r"^/x/([^/]*)(/.*)$")
GEMINI_RE = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$")
FAIL_RE = re.compile(r"FAKE_FAIL=(\d{3})")

_log_lock = threading.Lock()
_seq_lock = threading.Lock()
_seq: dict[tuple[str, str], int] = {}


def _next_seq(client: str, flow: str) -> int:
    with _seq_lock:
        n = _seq.get((client, flow), 0)
        _seq[(client, flow)] = n + 1
        return n


def _h(key: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}|{key}".encode()).digest()[:8], "big")


def _rng(key: str, salt: str, lo: int, hi: int) -> int:
    """Deterministic integer in [lo, hi)."""
    return lo + _h(key, salt) % (hi - lo)


def is_reasoning_model(model: str) -> bool:
    return model.startswith(OPENAI_REASONING_MODELS)


def choose_usage(api: str, model: str, key: str) -> dict:
    """Disjoint buckets. `output` is ALL completion tokens, `reasoning` is the part of them that is reasoning."""
    u = {"input_uncached": 0, "cache_read": 0, "cache_write": 0, "output": 0, "reasoning": 0}
    if api == "openai.embeddings":
        u["input_uncached"] = _rng(key, "in", 5, 500)
        return u
    if api.startswith("openai."):
        u["input_uncached"] = _rng(key, "in", 100, 5000)
        # OpenAI caches in 128-token steps past 1024.
        u["cache_read"] = 1024 + 128 * _rng(key, "cr", 0, 16)
        visible = _rng(key, "out", 10, 1000)
        if is_reasoning_model(model):
            u["reasoning"] = _rng(key, "rs", 64, 2048)
        u["output"] = visible + u["reasoning"]
        return u
    if api == "gemini.generate":
        u["input_uncached"] = _rng(key, "in", 100, 5000)
        u["cache_read"] = _rng(key, "cr", 0, 2000)
        u["reasoning"] = _rng(key, "rs", 0, 512)
        u["output"] = _rng(key, "out", 10, 1000) + u["reasoning"]
        return u
    # anthropic.messages
    u["input_uncached"] = _rng(key, "in", 5, 1000)
    u["cache_read"] = _rng(key, "cr", 1000, 10000)
    u["cache_write"] = _rng(key, "cw", 500, 5000)
    u["output"] = _rng(key, "out", 10, 1000)
    return u


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def make_text(key: str) -> str:
    n = _rng(key, "words", 6, 14)
    return " ".join(WORDS[_h(key, f"w{i}") % len(WORDS)] for i in range(n)).capitalize() + "."


def split_text(text: str, parts: int = 3) -> list[str]:
    step = max(1, len(text) // parts)
    chunks = [text[i:i + step] for i in range(0, len(text), step)]
    return chunks or [""]


def short_id(key: str, salt: str = "id", n: int = 24) -> str:
    return hashlib.sha256(f"{salt}|{key}".encode()).hexdigest()[:n]


def tool_args_for(tool_name: str) -> dict:
    if "weather" in tool_name:
        return {"city": "Paris"}
    return {"input": "value"}


# ---------------------------------------------------------------- request inspection

def openai_first_tool(body: dict) -> str | None:
    tools = body.get("tools") or []
    for t in tools:
        if isinstance(t, dict):
            if t.get("type") == "function":
                fn = t.get("function")
                if isinstance(fn, dict) and fn.get("name"):
                    return fn["name"]
                if t.get("name"):  # Responses API flat shape
                    return t["name"]
    return None


def openai_has_tool_result(messages) -> bool:
    """Chat Completions: a `tool` message after the last user message."""
    if not isinstance(messages, list):
        return False
    for m in reversed(messages):
        if not isinstance(m, dict):
            continue
        if m.get("role") in ("tool", "function"):
            return True
        if m.get("role") == "user":
            return False
    return False


def responses_has_tool_result(inp) -> bool:
    if not isinstance(inp, list):
        return False
    for item in reversed(inp):
        if isinstance(item, dict):
            if item.get("type") == "function_call_output":
                return True
            if item.get("role") == "user":
                return False
    return False


def anthropic_first_tool(body: dict) -> str | None:
    for t in body.get("tools") or []:
        if isinstance(t, dict) and t.get("name") and t.get("type") in (None, "custom"):
            return t["name"]
    return None


def anthropic_has_tool_result(messages) -> bool:
    if not isinstance(messages, list) or not messages:
        return False
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return False
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


# ---------------------------------------------------------------- handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1"

    def log_message(self, fmt, *args):  # quiet; set FAKE_PROVIDER_VERBOSE=1 to see requests
        if os.environ.get("FAKE_PROVIDER_VERBOSE"):
            sys.stderr.write("fake: " + (fmt % args) + "\n")

    # -- plumbing
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send_json(self, status: int, obj, headers: dict | None = None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_sse(self, headers: dict | None = None):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _sse(self, data, event: str | None = None):
        payload = data if isinstance(data, str) else json.dumps(data)
        msg = (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"
        self._chunk(msg.encode())

    def _end_sse(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- routing
    def _route(self):
        path = self.path.split("?", 1)[0]
        tags = {}
        m = TAG_RE.match(path)
        if m:
            for kv in unquote(m.group(1)).split(","):
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    tags[k.strip()] = v.strip()
            path = m.group(2)
        for k in ("client", "flow", "fail"):
            hv = self.headers.get(f"X-Fake-{k.capitalize()}")
            if hv and k not in tags:
                tags[k] = hv
        return path.rstrip("/"), tags

    def do_HEAD(self):
        # Claude Code probes its base URL (HEAD /api/hello) before the first request.
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        path, _ = self._route()
        if path == "/_health":
            return self._send_json(200, {"ok": True})
        if path == "/v1/models":
            models = ["gpt-4o-mini", "gpt-4o", "o4-mini", "text-embedding-3-small"]
            return self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in models]})
        self._send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error",
                                        "param": None, "code": None}})

    def do_POST(self):
        path, tags = self._route()
        raw = self._read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send_json(400, {"error": {"message": "bad json", "type": "invalid_request_error",
                                                   "param": None, "code": None}})
        if "fail" not in tags:
            fm = FAIL_RE.search(raw.decode("utf-8", "replace"))
            if fm:
                tags["fail"] = fm.group(1)
        routes = {
            "/v1/chat/completions": ("openai.chat", self.openai_chat),
            "/v1/embeddings": ("openai.embeddings", self.openai_embeddings),
            "/v1/responses": ("openai.responses", self.openai_responses),
            "/v1/messages": ("anthropic.messages", self.anthropic_messages),
        }
        gm = GEMINI_RE.match(path)
        if path not in routes and not gm:
            return self._send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error",
                                                   "param": None, "code": None}})
        api, fn = routes[path] if not gm else ("gemini.generate", self.gemini_generate)
        client = tags.get("client", "")
        flow = tags.get("flow", "")
        seq = _next_seq(client, flow)
        model = str(body.get("model", "")) if not gm else gm.group(1)
        stream = bool(body.get("stream")) if not gm else gm.group(2) == "streamGenerateContent"
        key = f"{client}|{flow}|{seq}|{api}|{model}|{int(stream)}"
        rec = {"api": api, "model": model, "stream": stream, "client": client, "flow": flow, "seq": seq}
        if tags.get("fail"):
            status = int(tags["fail"])
            rid = self.send_error_response(api, status, model, key)
            zero = {"input_uncached": 0, "cache_read": 0, "cache_write": 0, "output": 0, "reasoning": 0}
            rec.update(status=status, response_id=None, request_id=rid, usage=zero, usage_reported=False,
                       finish_reason=None, error_type=self._last_error_type, wire_usage=None)
        else:
            usage = choose_usage(api, model, key)
            extra = fn(body, model, stream, key, usage)
            rec.update(status=200, usage=usage, **extra)
        write_log(rec)

    # -- errors
    _last_error_type = None

    def send_error_response(self, api: str, status: int, model: str, key: str) -> str:
        rid = "req_" + short_id(key, "req")
        hdrs = {"x-should-retry": "false"}
        if api.startswith("anthropic"):
            etype = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                     500: "api_error", 529: "overloaded_error"}.get(status, "api_error")
            msg = {"overloaded_error": "Overloaded", "rate_limit_error": "Rate limited (fake)"}.get(etype, "Fake error")
            hdrs["request-id"] = rid
            if status == 429:
                hdrs["retry-after"] = "1"
            self._last_error_type = etype
            self._send_json(status, {"type": "error", "error": {"type": etype, "message": msg},
                                     "request_id": rid}, hdrs)
        else:
            if status == 429:
                err = {"message": f"Rate limit reached for {model} (fake provider).", "type": "requests",
                       "param": None, "code": "rate_limit_exceeded"}
                hdrs["retry-after"] = "1"
            elif status >= 500:
                err = {"message": "The server had an error (fake provider).", "type": "server_error",
                       "param": None, "code": None}
            else:
                err = {"message": "Invalid request (fake provider).", "type": "invalid_request_error",
                       "param": None, "code": None}
            hdrs["x-request-id"] = rid
            self._last_error_type = err["code"] or err["type"]
            self._send_json(status, {"error": err}, hdrs)
        return rid

    # -- OpenAI chat completions
    def openai_chat(self, body, model, stream, key, u):
        rid = "chatcmpl-" + short_id(key)
        created = 1750000000 + _h(key, "t") % 1000000
        tool = openai_first_tool(body)
        call_tool = bool(tool) and body.get("tool_choice") != "none" and not openai_has_tool_result(body.get("messages"))
        text = make_text(key)
        wire_usage = {
            "prompt_tokens": u["input_uncached"] + u["cache_read"],
            "completion_tokens": u["output"],
            "total_tokens": u["input_uncached"] + u["cache_read"] + u["output"],
            "prompt_tokens_details": {"cached_tokens": u["cache_read"], "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u["reasoning"], "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }
        finish = "tool_calls" if call_tool else "stop"
        call_id = "call_" + short_id(key, "call")
        args = json.dumps(tool_args_for(tool or ""))
        headers = {"x-request-id": "req_" + short_id(key, "req"), "openai-processing-ms": "12"}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if not stream:
            msg = {"role": "assistant", "content": None if call_tool else text, "refusal": None,
                   "annotations": []}
            if call_tool:
                msg["tool_calls"] = [{"id": call_id, "type": "function",
                                      "function": {"name": tool, "arguments": args}}]
            self._send_json(200, {
                "id": rid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
                "usage": wire_usage, "service_tier": "default", "system_fingerprint": "fp_fake",
            }, headers)
            reported = True
        else:
            self._start_sse(headers)
            base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "service_tier": "default", "system_fingerprint": "fp_fake"}
            if include_usage:
                base["usage"] = None

            def chunk(delta, finish_reason=None):
                return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish_reason}]}
            if call_tool:
                self._sse(chunk({"role": "assistant", "content": None, "refusal": None,
                                 "tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                                 "function": {"name": tool, "arguments": ""}}]}))
                for part in split_text(args, 2):
                    self._sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
            else:
                self._sse(chunk({"role": "assistant", "content": "", "refusal": None}))
                for part in split_text(text):
                    self._sse(chunk({"content": part}))
            self._sse(chunk({}, finish))
            if include_usage:
                self._sse({**base, "choices": [], "usage": wire_usage})
            self._sse("[DONE]")
            self._end_sse()
            reported = include_usage
        return {"response_id": rid, "usage_reported": reported, "finish_reason": finish,
                "service_tier": "default", "wire_usage": wire_usage if reported else None}

    # -- OpenAI embeddings
    def openai_embeddings(self, body, model, stream, key, u):
        inp = body.get("input")
        n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
        dims = int(body.get("dimensions") or 8)
        fmt = body.get("encoding_format") or "float"
        data = []
        for i in range(n):
            vec = [((_h(key, f"e{i}.{j}") % 2000) - 1000) / 1000.0 for j in range(dims)]
            emb = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if fmt == "base64" else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        wire_usage = {"prompt_tokens": u["input_uncached"], "total_tokens": u["input_uncached"]}
        self._send_json(200, {"object": "list", "data": data, "model": model, "usage": wire_usage},
                        {"x-request-id": "req_" + short_id(key, "req")})
        return {"response_id": None, "usage_reported": True, "finish_reason": None, "wire_usage": wire_usage}

    # -- OpenAI Responses API
    def openai_responses(self, body, model, stream, key, u):
        rid = "resp_" + short_id(key, "resp", 32)
        created = 1750000000 + _h(key, "t") % 1000000
        tool = openai_first_tool(body)
        call_tool = bool(tool) and not responses_has_tool_result(body.get("input"))
        text = make_text(key)
        wire_usage = {
            "input_tokens": u["input_uncached"] + u["cache_read"],
            "input_tokens_details": {"cached_tokens": u["cache_read"], "cache_write_tokens": 0},
            "output_tokens": u["output"],
            "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
            "total_tokens": u["input_uncached"] + u["cache_read"] + u["output"],
        }
        items = []
        if u["reasoning"]:
            items.append({"type": "reasoning", "id": "rs_" + short_id(key, "rs"), "summary": []})
        if call_tool:
            items.append({"type": "function_call", "id": "fc_" + short_id(key, "fc"),
                          "call_id": "call_" + short_id(key, "call"), "name": tool,
                          "arguments": json.dumps(tool_args_for(tool)), "status": "completed"})
        else:
            items.append({"type": "message", "id": "msg_" + short_id(key, "msg"), "status": "completed",
                          "role": "assistant",
                          "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})

        def resp(status, output, usage):
            return {"id": rid, "object": "response", "created_at": created, "status": status,
                    "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
                    "max_output_tokens": body.get("max_output_tokens"), "model": model, "output": output,
                    "parallel_tool_calls": True, "previous_response_id": None,
                    "reasoning": {"effort": "medium", "summary": None} if u["reasoning"] else None,
                    "service_tier": "default", "store": True, "temperature": 1.0,
                    "text": {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
                    "tools": body.get("tools") or [], "top_p": 1.0, "truncation": "disabled",
                    "usage": usage, "user": None, "metadata": {}}
        headers = {"x-request-id": "req_" + short_id(key, "req")}
        if not stream:
            self._send_json(200, resp("completed", items, wire_usage), headers)
        else:
            self._start_sse(headers)
            seq = 0

            def ev(obj):
                nonlocal seq
                obj["sequence_number"] = seq
                seq += 1
                self._sse(obj, obj["type"])
            ev({"type": "response.created", "response": resp("in_progress", [], None)})
            ev({"type": "response.in_progress", "response": resp("in_progress", [], None)})
            for oi, item in enumerate(items):
                if item["type"] == "message":
                    ev({"type": "response.output_item.added", "output_index": oi,
                        "item": {**item, "status": "in_progress", "content": []}})
                    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                    ev({"type": "response.content_part.added", "item_id": item["id"], "output_index": oi,
                        "content_index": 0, "part": part})
                    for piece in split_text(text):
                        ev({"type": "response.output_text.delta", "item_id": item["id"], "output_index": oi,
                            "content_index": 0, "delta": piece, "logprobs": []})
                    ev({"type": "response.output_text.done", "item_id": item["id"], "output_index": oi,
                        "content_index": 0, "text": text, "logprobs": []})
                    ev({"type": "response.content_part.done", "item_id": item["id"], "output_index": oi,
                        "content_index": 0, "part": item["content"][0]})
                elif item["type"] == "function_call":
                    ev({"type": "response.output_item.added", "output_index": oi,
                        "item": {**item, "arguments": "", "status": "in_progress"}})
                    ev({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                        "output_index": oi, "delta": item["arguments"]})
                    ev({"type": "response.function_call_arguments.done", "item_id": item["id"],
                        "output_index": oi, "arguments": item["arguments"], "name": item["name"]})
                else:
                    ev({"type": "response.output_item.added", "output_index": oi, "item": item})
                ev({"type": "response.output_item.done", "output_index": oi, "item": item})
            ev({"type": "response.completed", "response": resp("completed", items, wire_usage)})
            self._end_sse()
        return {"response_id": rid, "usage_reported": True,
                "finish_reason": "tool_calls" if call_tool else "stop", "service_tier": "default",
                "wire_usage": wire_usage}

    # -- Anthropic messages
    def anthropic_messages(self, body, model, stream, key, u):
        mid = "msg_" + short_id(key, "msg")
        tool = anthropic_first_tool(body)
        call_tool = bool(tool) and (body.get("tool_choice") or {}).get("type") != "none" \
            and not anthropic_has_tool_result(body.get("messages"))
        text = make_text(key)
        tool_id = "toolu_" + short_id(key, "toolu")
        args = tool_args_for(tool or "")
        stop = "tool_use" if call_tool else "end_turn"
        wire_usage = {
            "input_tokens": u["input_uncached"],
            "cache_creation_input_tokens": u["cache_write"],
            "cache_read_input_tokens": u["cache_read"],
            "cache_creation": {"ephemeral_5m_input_tokens": u["cache_write"], "ephemeral_1h_input_tokens": 0},
            "output_tokens": u["output"],
            "service_tier": "standard",
        }
        content = []
        if call_tool:
            content.append({"type": "text", "text": "I'll look that up."})
            content.append({"type": "tool_use", "id": tool_id, "name": tool, "input": args})
        else:
            content.append({"type": "text", "text": text})
        headers = {"request-id": "req_" + short_id(key, "req"), "anthropic-organization-id": "fake-org"}
        if not stream:
            self._send_json(200, {"id": mid, "type": "message", "role": "assistant", "model": model,
                                  "content": content, "stop_reason": stop, "stop_sequence": None,
                                  "usage": wire_usage}, headers)
        else:
            self._start_sse(headers)
            start_usage = {**wire_usage, "output_tokens": 1}  # the real API sends a placeholder here
            self._sse({"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}}, "message_start")
            for i, block in enumerate(content):
                if block["type"] == "text":
                    self._sse({"type": "content_block_start", "index": i,
                               "content_block": {"type": "text", "text": ""}}, "content_block_start")
                    if i == 0:
                        self._sse({"type": "ping"}, "ping")
                    for piece in split_text(block["text"]):
                        self._sse({"type": "content_block_delta", "index": i,
                                   "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
                else:
                    self._sse({"type": "content_block_start", "index": i,
                               "content_block": {"type": "tool_use", "id": tool_id, "name": tool, "input": {}}},
                              "content_block_start")
                    for piece in [""] + split_text(json.dumps(args), 2):
                        self._sse({"type": "content_block_delta", "index": i,
                                   "delta": {"type": "input_json_delta", "partial_json": piece}},
                                  "content_block_delta")
                self._sse({"type": "content_block_stop", "index": i}, "content_block_stop")
            # Like the current API: message_delta usage is cumulative and repeats the input counts.
            delta_usage = {"output_tokens": u["output"]}
            if os.environ.get("FAKE_ANTHROPIC_DELTA_USAGE", "full") == "full":
                delta_usage = {"input_tokens": u["input_uncached"],
                               "cache_creation_input_tokens": u["cache_write"],
                               "cache_read_input_tokens": u["cache_read"],
                               "output_tokens": u["output"]}
            self._sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                       "usage": delta_usage}, "message_delta")
            self._sse({"type": "message_stop"}, "message_stop")
            self._end_sse()
        return {"response_id": mid, "usage_reported": True, "finish_reason": stop,
                "service_tier": "standard", "cache_write_ttl": "5m", "wire_usage": wire_usage}

    def gemini_generate(self, body, model, stream, key, u):
        gc = body.get("generationConfig") or {}
        if gc.get("responseMimeType") == "application/json":
            text = json.dumps(sample_from_schema(gc.get("responseJsonSchema") or gc.get("responseSchema") or {}))
            pieces = [text]
        else:
            text = make_text(key)
            pieces = split_text(text)
        # Gemini's counts: the prompt includes the cache; candidates exclude the thoughts.
        wire_usage = {
            "promptTokenCount": u["input_uncached"] + u["cache_read"],
            "cachedContentTokenCount": u["cache_read"],
            "candidatesTokenCount": u["output"] - u["reasoning"],
            "thoughtsTokenCount": u["reasoning"],
            "totalTokenCount": u["input_uncached"] + u["cache_read"] + u["output"],
        }
        rid = "resp_" + short_id(key, "resp")

        def response(parts_text, last):
            r = {"candidates": [{"content": {"role": "model", "parts": [{"text": parts_text}]}, "index": 0}],
                 "modelVersion": model, "responseId": rid,
                 "usageMetadata": wire_usage if last else {"promptTokenCount": wire_usage["promptTokenCount"]}}
            if last:
                r["candidates"][0]["finishReason"] = "STOP"
            return r

        if not stream:
            self._send_json(200, response(text, True))
        else:
            self._start_sse()
            for i, piece in enumerate(pieces):
                self._sse(response(piece, i == len(pieces) - 1))
            self._end_sse()
        return {"response_id": rid, "usage_reported": True, "finish_reason": "STOP", "wire_usage": wire_usage}


def sample_from_schema(schema, depth: int = 0):
    """A value that satisfies a (JSON or OpenAPI) schema's types, enums and minimums."""
    if not isinstance(schema, dict) or depth > 6:
        return "fake"
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    t = str(t or ("object" if "properties" in schema else "string")).lower()
    if schema.get("enum"):
        return schema["enum"][0]
    if t == "object":
        return {k: sample_from_schema(v, depth + 1) for k, v in (schema.get("properties") or {}).items()}
    if t == "array":
        return []
    if t in ("integer", "number"):
        return schema.get("minimum", 1)
    if t == "boolean":
        return False
    return "fake"


def write_log(rec: dict):
    rec["ts"] = round(time.time(), 6)
    path = os.environ.get("FAKE_PROVIDER_LOG")
    if not path:
        return
    line = json.dumps(rec, sort_keys=True) + "\n"
    with _log_lock:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("FAKE_PROVIDER_PORT", "0"))
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"PORT={srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
