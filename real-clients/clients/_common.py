"""Shared plumbing for the harness clients: OTel SDK setup, fake-provider URLs, flow bookkeeping.

Environment (set by run.py):
    HARNESS_CLIENT               client name: service.name and the `client=` tag sent to the fake
    FAKE_PROVIDER_URL            http://127.0.0.1:PORT of the fake provider
    OTEL_EXPORTER_OTLP_ENDPOINT  base OTLP/HTTP endpoint (the exporter appends /v1/traces)
    HARNESS_FLOWS                optional comma list: run only these flows
    HARNESS_PARENT_SPAN          "0" disables the per-flow parent span (default on)
    HARNESS_CONSOLE              "1" also prints every span to stderr (debugging)

Each flow runs inside a plain (non-GenAI) INTERNAL parent span named `harness.flow <flow>` with the
attributes harness.client / harness.flow, so that a reader of the traces can tell the flows apart.
The last stdout line is a JSON summary {client, ok, spans_exported, spans_failed, flows:[...]}; the exit code
is 0 only if every flow behaved and the OTLP endpoint accepted every span.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

NAME = os.environ.get("HARNESS_CLIENT") or os.path.splitext(os.path.basename(sys.argv[0]))[0]
FAKE = os.environ.get("FAKE_PROVIDER_URL", "http://127.0.0.1:0").rstrip("/")
ONLY = {f for f in os.environ.get("HARNESS_FLOWS", "").split(",") if f}

# Models (all priced by prices/catalog.yaml).
OPENAI_CHAT = "gpt-4o-mini"
OPENAI_STREAM = "gpt-4o"
OPENAI_REASONING = "o4-mini"
OPENAI_EMBED = "text-embedding-3-small"
ANTHROPIC_CHAT = "claude-sonnet-4-20250514"
ANTHROPIC_STREAM = "claude-haiku-4-5-20251001"

WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "temperature_c": 21, "sky": "clear"})


class CountingExporter(SpanExporter):
    """Delegates to the OTLP exporter and counts what the endpoint accepted, so a client can fail when
    some of its spans were not delivered."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.exported = 0
        self.failed = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self):
        return self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


EXPORTER: CountingExporter | None = None


def setup_tracing() -> TracerProvider:
    global EXPORTER
    provider = TracerProvider(resource=Resource.create({"service.name": NAME}))
    EXPORTER = CountingExporter(OTLPSpanExporter())
    provider.add_span_processor(BatchSpanProcessor(EXPORTER))
    if os.environ.get("HARNESS_CONSOLE") == "1":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    trace.set_tracer_provider(provider)
    return provider


def tag(flow: str, fail: int | None = None) -> str:
    t = f"/x/client={NAME},flow={flow}"
    return t + (f",fail={fail}" if fail else "")


def openai_base_url(flow: str, fail: int | None = None) -> str:
    return FAKE + tag(flow, fail) + "/v1"


def anthropic_base_url(flow: str, fail: int | None = None) -> str:
    return FAKE + tag(flow, fail)


class ExpectedError(Exception):
    pass


class Runner:
    """Runs named flows, each in a parent span; collects a summary printed as JSON on stdout."""

    def __init__(self, provider: TracerProvider):
        self.provider = provider
        self.tracer = trace.get_tracer("harness")
        self.results: list[dict] = []

    def flow(self, name: str, fn, expect_error: bool = False):
        if ONLY and name not in ONLY:
            return
        t0 = time.time()
        res = {"client": NAME, "flow": name, "ok": False}
        try:
            if os.environ.get("HARNESS_PARENT_SPAN", "1") != "0":
                with self.tracer.start_as_current_span(
                        f"harness.flow {name}",
                        attributes={"harness.client": NAME, "harness.flow": name}):
                    self._call(fn, expect_error, res)
            else:
                self._call(fn, expect_error, res)
        except Exception as e:  # a flow failure is reported, the others still run
            res["error"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        res["seconds"] = round(time.time() - t0, 3)
        self.results.append(res)

    @staticmethod
    def _call(fn, expect_error, res):
        if expect_error:
            try:
                fn()
            except Exception as e:  # the SDK's own error type, whatever it is
                res["ok"] = True
                res["raised"] = type(e).__name__
                return
            raise ExpectedError("the error flow did not raise")
        out = fn()
        res["ok"] = True
        if out is not None:
            res["result"] = str(out)[:200]

    def finish(self) -> int:
        self.provider.force_flush(30_000)
        self.provider.shutdown()
        exported = EXPORTER.exported if EXPORTER else 0
        failed = EXPORTER.failed if EXPORTER else 0
        ok = all(r["ok"] for r in self.results) and bool(self.results) and failed == 0 and exported > 0
        print(json.dumps({"client": NAME, "ok": ok, "spans_exported": exported, "spans_failed": failed,
                          "flows": self.results}), flush=True)
        return 0 if ok else 1
