#!/usr/bin/env python3
"""Compares the spans that otlp_sink.py received with the fake provider's ground truth (stdlib only).

    python3 observe.py DIR            # reads DIR/spans.jsonl and DIR/ground_truth.jsonl, prints markdown

For every client: the span names by scope, the token-ish attribute keys, whether GenAI spans nest in
other GenAI spans, and per flow the truth next to what each span reported. It does not normalise the
dialects (that is llmhub's job); it only checks that some span carries each true number.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path


def is_token_key(k: str, v) -> bool:
    kl = k.lower()
    return isinstance(v, (int, float)) and not isinstance(v, bool) and "token" in kl and "max_token" not in kl \
        and "budget" not in kl


def load(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def truth_numbers(t: dict) -> dict:
    u = t["usage"]
    return {"input_total": u["input_uncached"] + u["cache_read"] + u["cache_write"],
            "input_uncached": u["input_uncached"], "cache_read": u["cache_read"],
            "cache_write": u["cache_write"], "output": u["output"], "reasoning": u["reasoning"],
            "visible_output": u["output"] - u["reasoning"]}


def report(spans_path: Path, truth_path: Path) -> str:
    spans = load(spans_path)
    truth = load(truth_path)
    by_id = {s["span_id"]: s for s in spans}
    flow_of_trace = {}
    for s in spans:
        if s["name"].startswith("harness.flow "):
            flow_of_trace[s["trace_id"]] = s["attributes"].get("harness.flow")

    truth_by_rid = {t["response_id"]: t for t in truth if t.get("response_id")}
    window: dict[str, list] = {}
    for sp in spans:
        w = window.setdefault(sp["trace_id"], [sp["start_ns"], sp["end_ns"]])
        w[0], w[1] = min(w[0], sp["start_ns"]), max(w[1], sp["end_ns"])

    def flow_for(sp):
        """The harness.flow parent's flow; else the response id; else the truth request answered in the trace's
        time window (for clients run without parent spans)."""
        f = flow_of_trace.get(sp["trace_id"])
        if f:
            return f
        a = sp["attributes"]
        rid = a.get("gen_ai.response.id") or a.get("llm.response.id")
        if rid in truth_by_rid:
            return truth_by_rid[rid]["flow"]
        vals = {v for k, v in a.items() if is_token_key(k, v)}
        for t in truth:
            if t["client"] == sp["service"] and t["status"] == 200 and t["usage"]["output"] in vals and (
                    truth_numbers(t)["input_total"] in vals or t["usage"]["input_uncached"] in vals):
                return t["flow"]
        lo, hi = (x / 1e9 for x in window[sp["trace_id"]])
        cands = [t for t in truth if t["client"] == sp["service"] and lo - 0.05 <= t["ts"] <= hi + 0.05]
        return min(cands, key=lambda t: abs(t["ts"] - hi))["flow"] if cands else None

    def is_genai(s):
        if s["name"].startswith("harness.flow "):
            return False
        a = s["attributes"]
        return any(k.startswith(("gen_ai.", "llm.")) for k in a) or any(is_token_key(k, v) for k, v in a.items())

    def genai_ancestor(s):
        p = by_id.get(s.get("parent_span_id") or "")
        while p is not None:
            if is_genai(p):
                return p
            p = by_id.get(p.get("parent_span_id") or "")
        return None

    out = ["# Observations (spans received by otlp_sink vs fake-provider ground truth)", ""]
    clients = list(dict.fromkeys([t["client"] for t in truth] + [s["service"] for s in spans]))
    for c in clients:
        cs = [s for s in spans if s["service"] == c]
        ct = [t for t in truth if t["client"] == c]
        out.append(f"## {c}")
        out.append("")
        names = Counter((s["scope"], s["name"], s["kind"]) for s in cs if not s["name"].startswith("harness.flow "))
        out.append("Spans (scope / name / kind: count):")
        for (scope, name, kind), n in sorted(names.items()):
            out.append(f"- `{scope}` / `{name}` / {kind}: {n}")
        keys = sorted({k for s in cs for k, v in s["attributes"].items() if is_token_key(k, v)})
        out.append(f"\nToken attribute keys: {', '.join('`%s`' % k for k in keys) or '(none)'}")
        sysk = sorted({f"{k}={s['attributes'][k]}" for s in cs for k in
                       ("gen_ai.system", "gen_ai.provider.name", "llm.system", "llm.provider")
                       if k in s["attributes"]})
        out.append(f"Provider attributes: {', '.join(sysk) or '(none)'}")
        nested = Counter((genai_ancestor(s)["name"], s["name"]) for s in cs if is_genai(s) and genai_ancestor(s))
        if nested:
            out.append("GenAI spans nested in GenAI spans (parent > child: count): "
                       + ", ".join(f"`{p}` > `{ch}`: {n}" for (p, ch), n in nested.items()))
        else:
            out.append("GenAI spans nested in GenAI spans: none")
        span_flow = {s["span_id"]: flow_for(s) for s in cs if is_genai(s)}
        if any(f is None for f in span_flow.values()):
            out.append(f"Spans not attributable to a flow: {sum(f is None for f in span_flow.values())}")
        out.append("")
        out.append("| flow | truth (per request) | spans with token attrs: reported values | missing true numbers |")
        out.append("|---|---|---|---|")
        flows = list(dict.fromkeys([t["flow"] for t in ct] + [f for f in span_flow.values() if f]))
        for fl in flows:
            ft = [t for t in ct if t["flow"] == fl]
            fs = [s for s in cs if span_flow.get(s["span_id"]) == fl]
            tcells = []
            for t in ft:
                n = truth_numbers(t)
                tcells.append(f"{t['api']} {t['model']}{' stream' if t['stream'] else ''} status={t['status']}: "
                              + " ".join(f"{k}={v}" for k, v in n.items() if v)
                              + ("" if t["usage_reported"] or t["status"] != 200 else " (usage NOT sent)"))
            scells = []
            reported_vals = set()
            for s in fs:
                toks = {k: v for k, v in s["attributes"].items() if is_token_key(k, v)}
                reported_vals |= set(toks.values())
                st = "" if s["status"] != "ERROR" else " ERROR"
                scells.append(f"`{s['name']}`{st}: " + (", ".join(f"{k}={v}" for k, v in sorted(toks.items()))
                                                      or "no tokens"))
            missing = []
            for t in ft:
                if t["status"] != 200 or not t["usage_reported"]:
                    continue
                n = truth_numbers(t)
                for k in ("input_total", "output", "cache_read", "cache_write", "reasoning"):
                    if n[k] and n[k] not in reported_vals and not (k == "input_total" and n["input_uncached"]
                                                                    in reported_vals and not n["cache_read"]):
                        missing.append(f"{k}={n[k]}")
            out.append(f"| {fl} | {'<br>'.join(tcells) or '-'} | {'<br>'.join(scells) or 'NO GenAI SPAN'} | "
                       f"{', '.join(missing) or '-'} |")
        out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    d = Path(sys.argv[1])
    sys.stdout.write(report(d / "spans.jsonl", d / "ground_truth.jsonl"))
