#!/usr/bin/env python3
"""Preview: llmhub's Prometheus counters vs the harness ground truth, per service (= client). Stdlib only.

    python3 compare_metrics.py DIR/ground_truth.jsonl http://127.0.0.1:9464/metrics   (or a saved metrics file)

Maps the ground truth to llmhub's disjoint buckets (llmhub's `output` EXCLUDES reasoning, the ground truth's
`output` INCLUDES it): input_uncached, cache_read, cache_write (all fake Anthropic writes are 5-minute),
output = output - reasoning, reasoning. Also requests (status 200 + errors) and errors. Only lines with
expect_span=true are counted. Counters are cumulative: use a fresh llmhub (or subtract a baseline).
This is a convenience for humans; the authoritative comparison is the Rust side's.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections import defaultdict

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
BUCKETS = ("input_uncached", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")


def truth_sums(path: str) -> dict:
    out = defaultdict(lambda: defaultdict(int))
    for line in open(path):
        t = json.loads(line)
        if not t.get("expect_span", True):
            continue
        s = out[t["client"]]
        s["requests"] += 1
        if t["status"] != 200:
            s["errors"] += 1
            continue
        u = t["usage"]
        s["input_uncached"] += u["input_uncached"]
        s["cache_read"] += u["cache_read"]
        s["cache_write"] += u["cache_write"]
        s["output"] += u["output"] - u["reasoning"]
        s["reasoning"] += u["reasoning"]
    return out


def metric_sums(src: str) -> dict:
    text = urllib.request.urlopen(src).read().decode() if src.startswith("http") else open(src).read()
    out = defaultdict(lambda: defaultdict(float))
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), dict(LABEL.findall(m.group(3) or "")), float(m.group(4))
        svc = labels.get("service_name", "")
        if name == "llmhub_tokens_total":
            out[svc][labels.get("llmhub_token_bucket", "?")] += value
        elif name == "llmhub_requests_total":
            out[svc]["requests"] += value
        elif name == "llmhub_errors_total":
            out[svc]["errors"] += value
    return out


def main() -> int:
    truth, got = truth_sums(sys.argv[1]), metric_sums(sys.argv[2])
    cols = BUCKETS + ("requests", "errors")
    bad = 0
    for svc in sorted(set(truth) | set(got)):
        diffs = [(c, truth[svc].get(c, 0), int(got[svc].get(c, 0))) for c in cols]
        wrong = [d for d in diffs if d[1] != d[2]]
        bad += bool(wrong)
        print(f"{svc:30} {'OK' if not wrong else 'MISMATCH'}")
        for c, want, have in wrong:
            print(f"    {c:15} truth={want:<8} llmhub={have:<8} diff={have - want:+}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
