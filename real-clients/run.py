#!/usr/bin/env python3
"""Runs real GenAI instrumentation packages against the fake provider and writes the ground truth.

    python3 run.py --endpoint http://127.0.0.1:4318 --out DIR [--clients a,b] [--latest] [--jobs N]
    python3 run.py --observe --out DIR [...]     # no llmhub: spans go to otlp_sink.py, and
                                                 # DIR/observations.md compares them with the truth
    python3 run.py --list                        # the clients, their venvs and flows
    python3 run.py --install-only [--clients ..] # only create/refresh the venvs (and, without
                                                 # --clients, the tools' venvs: rotel)

Stdlib only. See README.md for the contract (files, bucket convention, exit codes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree (observe.py is imported)
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_ROOT = REPO / "target" / "real-clients" / "venvs"
LOCKS = HERE / "locks"
CLIENT_DIR = HERE / "clients"

# name -> lock (= venv) name; optional: script (default = name), env (extra environment), default (False = run
# only when named in --clients), no_span_flows (flows whose provider requests the instrumentation is known
# not to trace; their ground-truth lines get "expect_span": false). Order = default run order.
CLIENTS: dict[str, dict] = {
    "openai_v2": {"lock": "openai_v2"},
    "openllmetry_openai": {"lock": "openllmetry_openai"},
    "openinference_openai": {"lock": "openinference_openai"},
    "anthropic_openinference": {"lock": "anthropic_openinference"},
    "anthropic_openinference_nosdk": {"lock": "anthropic_openinference", "script": "anthropic_openinference",
                                      "env": {"ANTHROPIC_OPEN_TELEMETRY": "false"}},
    "anthropic_sdk": {"lock": "anthropic_openinference"},
    "openllmetry_anthropic": {"lock": "openllmetry_anthropic"},
    "openlit_openai": {"lock": "openlit"},
    "openlit_anthropic": {"lock": "openlit", "no_span_flows": ["error"]},
    "pydantic_ai": {"lock": "pydantic_ai", "script": "pydantic_ai_client"},
    "langchain_openinference": {"lock": "langchain_openinference"},
    # litellm's otel callback writes its usage onto the caller's current span when there is one, so the
    # default client runs its flows without the harness parent span (see README, observations).
    "litellm_otel": {"lock": "litellm_otel", "env": {"HARNESS_PARENT_SPAN": "0"}},
    "litellm_otel_parent": {"lock": "litellm_otel", "script": "litellm_otel", "default": False},
    # Node: the Vercel AI SDK (node/run.sh: npm ci into target/, cached by the lock's hash).
    "vercel_ai": {"node": "v6"},
    "vercel_ai_v7": {"node": "v7"},
}

NODE_RUN = HERE / "node" / "run.sh"

# Locks of tools the Rust tests run (not clients; installed by --install-only without --clients):
# rotel's collector binary for collector-processor/tests/rotel.rs.
TOOL_LOCKS = ["rotel"]
# npm-installed tools the Rust tests run: the coding-agent CLIs of
# collector-processor/tests/coding_agents.rs (Claude Code, Gemini CLI, Codex CLI).
TOOL_NODE = HERE / "coding-agents" / "install.sh"


def is_node(name: str) -> bool:
    return "node" in CLIENTS[name]


def ensure_node(clients: list[str]) -> dict[str, str]:
    """npm ci of each Node variant used (a no-op while its lock is unchanged); variant -> lock file."""
    done = {}
    for v in sorted({CLIENTS[c]["node"] for c in clients if is_node(c)}):
        t0 = time.time()
        subprocess.run(["bash", str(NODE_RUN), "install", v], check=True, stdout=subprocess.DEVNULL)
        lock = HERE / "node" / ("package-lock.json" if v == "v6" else "v7/package-lock.json")
        log(f"node {v}: installed in {time.time() - t0:.1f}s")
        done[v] = str(lock)
    return done


def node_versions(lock: str) -> dict:
    pkgs = json.loads(Path(lock).read_text()).get("packages", {})
    return {k.split("node_modules/", 1)[1]: v.get("version") for k, v in pkgs.items()
            if k.count("node_modules/") == 1 and not k.split("node_modules/", 1)[1].startswith("@types")}


def log(msg: str):
    print(f"[run.py] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ locks and venvs

def parse_lock(lock: Path) -> dict:
    """Header lines: `# top-level: a b c`, `# keep: spec spec` (also applied with --latest)."""
    top, keep, pins = [], [], {}
    for line in lock.read_text().splitlines():
        s = line.strip()
        if s.startswith("# top-level:"):
            top += s.split(":", 1)[1].split()
        elif s.startswith("# keep:"):
            keep += s.split(":", 1)[1].split()
        elif s and not s.startswith("#") and "==" in s:
            name, ver = s.split("==", 1)
            pins[canon(name)] = ver.strip()
    return {"top": top, "keep": keep, "pins": pins}


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", name, 1)[0]).lower()


def lock_key(lock: Path) -> str:
    h = hashlib.sha256(lock.read_bytes())
    h.update(f"{sys.version_info[:3]}".encode())
    return h.hexdigest()


def pip_env() -> dict:
    env = dict(os.environ)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def ensure_venv(lock_name: str, latest: bool) -> tuple[Path, str, float]:
    """Returns (python path, status, seconds). Reuses a locked venv whose key matches the lock file."""
    t0 = time.time()
    lock = LOCKS / f"{lock_name}.txt"
    vdir = VENV_ROOT / (lock_name + ("-latest" if latest else ""))
    py = vdir / "bin" / "python"
    stamp = vdir / ".harness-key"
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    logf = VENV_ROOT / f"{vdir.name}.install.log"
    if not latest:
        key = lock_key(lock)
        if py.exists() and stamp.exists() and stamp.read_text().strip() == key:
            return py, "reused", time.time() - t0
        if vdir.exists():
            shutil.rmtree(vdir)
        cmds = [[sys.executable, "-m", "venv", str(vdir)],
                [str(py), "-m", "pip", "install", "-q", "-r", str(lock)]]
    else:
        info = parse_lock(lock)
        cmds = [] if py.exists() else [[sys.executable, "-m", "venv", str(vdir)]]
        cmds.append([str(py), "-m", "pip", "install", "-q", "-U", *info["top"], *info["keep"]])
    with open(logf, "w") as lf:
        for cmd in cmds:
            lf.write("$ " + " ".join(cmd) + "\n")
            lf.flush()
            rc = subprocess.call(cmd, stdout=lf, stderr=subprocess.STDOUT, env=pip_env())
            if rc != 0:
                raise RuntimeError(f"install of {vdir.name} failed (rc={rc}), see {logf}")
    if not latest:
        stamp.write_text(lock_key(lock) + "\n")
    return py, "installed" if not latest else "upgraded", time.time() - t0


def relock(lock_name: str) -> tuple[str, float]:
    """Rewrites locks/<name>.txt: its header (top-level / keep lines) + `pip freeze` of a fresh venv."""
    t0 = time.time()
    lock = LOCKS / f"{lock_name}.txt"
    info = parse_lock(lock)
    vdir = VENV_ROOT / f"{lock_name}-relock"
    if vdir.exists():
        shutil.rmtree(vdir)
    py = vdir / "bin" / "python"
    logf = VENV_ROOT / f"{vdir.name}.install.log"
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    with open(logf, "w") as lf:
        for cmd in ([sys.executable, "-m", "venv", str(vdir)],
                    [str(py), "-m", "pip", "install", "-q", *info["top"], *info["keep"]]):
            lf.write("$ " + " ".join(cmd) + "\n")
            lf.flush()
            if subprocess.call(cmd, stdout=lf, stderr=subprocess.STDOUT, env=pip_env()) != 0:
                raise RuntimeError(f"relock of {lock_name} failed, see {logf}")
    pins = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True, env=pip_env()).stdout
    header = [l for l in lock.read_text().splitlines()
              if l.startswith("#") and not l.startswith(("# locked:", "# python:"))]
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    lock.write_text("\n".join(header + [f"# locked: {stamp} (run.py --relock)",
                                        f"# python: {sys.version.split()[0]}"]) + "\n" + pins)
    shutil.rmtree(vdir)
    return str(lock), time.time() - t0


def freeze(py: Path) -> dict:
    out = subprocess.run([str(py), "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                         env=pip_env()).stdout
    return {canon(l.split("==")[0]): l.split("==", 1)[1] for l in out.splitlines() if "==" in l}


def ensure_venvs(clients: list[str], latest: bool, jobs: int) -> dict[str, Path]:
    locks = sorted({CLIENTS[c]["lock"] for c in clients if not is_node(c)})
    pys: dict[str, Path] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        futs = {ex.submit(ensure_venv, ln, latest): ln for ln in locks}
        for f in concurrent.futures.as_completed(futs):
            ln = futs[f]
            py, status, secs = f.result()  # an install failure aborts the run
            log(f"venv {ln}{'-latest' if latest else ''}: {status} in {secs:.1f}s")
            pys[ln] = py
    if latest:
        print_latest_table(locks, pys)
    return pys


def print_latest_table(locks: list[str], pys: dict[str, Path]):
    rows = [("venv", "package", "locked", "latest")]
    for ln in locks:
        info = parse_lock(LOCKS / f"{ln}.txt")
        now = freeze(pys[ln])
        for spec in info["top"]:
            n = canon(spec)
            locked, cur = info["pins"].get(n, "-"), now.get(n, "-")
            rows.append((ln, n, locked, cur + ("" if cur == locked else "  *")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("(* = differs from the lock)")
    for ln in locks:
        keep = parse_lock(LOCKS / f"{ln}.txt")["keep"]
        if keep:
            print(f"{ln}: also installed with the lock's keep constraints: {' '.join(keep)}")


# ------------------------------------------------------------------ processes

def start_server(cmd: list[str], env: dict, logpath: Path) -> tuple[subprocess.Popen, int]:
    errf = open(logpath, "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True, env=env, start_new_session=True)
    line = p.stdout.readline().strip()
    if not line.startswith("PORT="):
        p.kill()
        raise RuntimeError(f"{cmd[1]} did not start (got {line!r}), see {logpath}")
    return p, int(line.split("=", 1)[1])


def stop(p: subprocess.Popen | None):
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=5)
    except Exception:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except Exception:
            pass


def client_env(name: str, fake_url: str, endpoint: str) -> dict:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE") if k in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith("HARNESS_")})
    env.update({
        "HARNESS_CLIENT": name,
        "FAKE_PROVIDER_URL": fake_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": name,
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OPENAI_API_KEY": "sk-fake-harness",
        "ANTHROPIC_API_KEY": "sk-ant-fake-harness",
        # Untagged fallbacks, for code paths that read the environment instead of the explicit base URL.
        "OPENAI_BASE_URL": fake_url + "/v1",
        "ANTHROPIC_BASE_URL": fake_url,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Keep frameworks from phoning home / reading user config.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "DO_NOT_TRACK": "1",
        "TRACELOOP_TELEMETRY": "false",
    })
    env.update(CLIENTS[name].get("env", {}))
    return env


def run_client(name: str, py: Path | None, fake_url: str, endpoint: str, logs: Path, timeout: float) -> dict:
    if is_node(name):
        cmd = ["bash", str(NODE_RUN), "run", CLIENTS[name]["node"]]
    else:
        cmd = [str(py), str(CLIENT_DIR / f"{CLIENTS[name].get('script', name)}.py")]
    t0 = time.time()
    with open(logs / f"{name}.out", "w") as out, open(logs / f"{name}.err", "w") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=str(CLIENT_DIR),
                             env=client_env(name, fake_url, endpoint), start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(p)
            rc = "timeout"
    res = {"client": name, "rc": rc, "seconds": round(time.time() - t0, 2), "flows": []}
    for line in (logs / f"{name}.out").read_text().splitlines()[::-1]:
        if line.startswith("{") and '"flows"' in line:
            try:
                summary = json.loads(line)
                res["flows"] = summary["flows"]
                res["spans_exported"] = summary.get("spans_exported")
                res["spans_failed"] = summary.get("spans_failed")
            except ValueError:
                pass
            break
    res["ok"] = rc == 0 and bool(res["flows"]) and all(f["ok"] for f in res["flows"]) \
        and not res.get("spans_failed")
    return res


# ------------------------------------------------------------------ main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", help="OTLP/HTTP base endpoint of llmhub, e.g. http://127.0.0.1:4318")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--clients", help="comma list (default: all); see --list")
    ap.add_argument("--latest", action="store_true", help="use the newest releases of the top-level packages")
    ap.add_argument("--observe", action="store_true", help="send spans to otlp_sink.py instead of --endpoint")
    ap.add_argument("--jobs", type=int, default=2, help="parallel venv installs (default 2)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per client (default 300)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--install-only", action="store_true")
    ap.add_argument("--relock", action="store_true",
                    help="regenerate the selected lock files from their top-level/keep header lines")
    a = ap.parse_args()

    if a.list:
        for n, c in CLIENTS.items():
            where = f"node={c['node']}" if "node" in c else f"venv={c['lock']}"
            print(f"{n:30} {where:29} script={c.get('script', n)}.{'mjs' if 'node' in c else 'py'}"
                  + ("" if c.get("default", True) else " (not default)") + f" {c.get('env', '')}")
        return 0
    names = [c for c in (a.clients.split(",") if a.clients else
                         [n for n, c in CLIENTS.items() if c.get("default", True)]) if c]
    unknown = [c for c in names if c not in CLIENTS]
    if unknown:
        ap.error(f"unknown clients: {unknown}; known: {list(CLIENTS)}")
    if a.relock:
        locks = sorted({CLIENTS[c]["lock"] for c in names if not is_node(c)})
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            for path, secs in ex.map(relock, locks):
                log(f"relocked {path} in {secs:.1f}s")
        return 0
    if not a.install_only and not a.out:
        ap.error("--out is required")
    if not a.install_only and not a.endpoint and not a.observe:
        ap.error("--endpoint is required (or --observe)")

    t_start = time.time()
    pys = ensure_venvs(names, a.latest, a.jobs)
    node_locks = ensure_node(names)
    t_venvs = time.time() - t_start
    if a.install_only:
        if not a.clients:
            for ln in TOOL_LOCKS:
                _, status, secs = ensure_venv(ln, False)
                log(f"venv {ln} (tool): {status} in {secs:.1f}s")
            t0 = time.time()
            subprocess.run(["bash", str(TOOL_NODE)], check=True, stdout=subprocess.DEVNULL)
            log(f"coding agents (tool): installed in {time.time() - t0:.1f}s")
        return 0

    out = Path(a.out).resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fake_log = out / "fake_provider.jsonl"
    for f in (fake_log, out / "ground_truth.jsonl", out / "spans.jsonl"):
        if f.exists():
            f.unlink()

    fake = sink = None
    results = []
    try:
        fenv = {k: v for k, v in os.environ.items() if k not in ("FAKE_PROVIDER_LOG", "FAKE_PROVIDER_PORT")}
        fenv["FAKE_PROVIDER_LOG"] = str(fake_log)
        fake, port = start_server([sys.executable, str(HERE / "fake_provider.py"), "0"], fenv, logs / "fake_provider.err")
        fake_url = f"http://127.0.0.1:{port}"
        log(f"fake provider on {fake_url}")
        endpoint = a.endpoint
        if a.observe:
            sink_py = pys[next(CLIENTS[n]["lock"] for n in names if not is_node(n))]
            sink, sport = start_server([str(sink_py), str(HERE / "otlp_sink.py"), str(out / "spans.jsonl"), "0"],
                                       dict(os.environ), logs / "otlp_sink.err")
            endpoint = f"http://127.0.0.1:{sport}"
            log(f"observing: OTLP sink on {endpoint} -> {out / 'spans.jsonl'}")
        for n in names:
            py = None if is_node(n) else pys[CLIENTS[n]["lock"]]
            r = run_client(n, py, fake_url, endpoint.rstrip("/"), logs, a.timeout)
            bad = [f["flow"] for f in r["flows"] if not f["ok"]]
            log(f"client {n}: {'ok' if r['ok'] else 'FAILED'} rc={r['rc']} {r['seconds']}s "
                f"spans={r.get('spans_exported')} failed={r.get('spans_failed')}"
                + (f" failed flows={bad}" if bad else "") + ("" if r["ok"] else f" (see {logs / (n + '.err')})"))
            results.append(r)
    finally:
        stop(fake)
        stop(sink)

    truth = []
    if fake_log.exists():
        truth = [json.loads(l) for l in fake_log.read_text().splitlines() if l.strip()]
    order = {n: i for i, n in enumerate(names)}
    truth.sort(key=lambda r: (order.get(r.get("client"), 99), r["ts"]))
    with open(out / "ground_truth.jsonl", "w") as f:
        for r in truth:
            r["expect_span"] = r.get("flow") not in CLIENTS.get(r.get("client"), {}).get("no_span_flows", [])
            f.write(json.dumps(r, sort_keys=True) + "\n")
    for r in results:
        r["requests"] = sum(1 for t in truth if t.get("client") == r["client"])
        if r["requests"] == 0:
            r["ok"] = False
    stray = [t for t in truth if t.get("client") not in order]
    if stray:
        log(f"WARNING: {len(stray)} provider requests without a known client tag (first: {stray[0].get('api')})")

    versions = {ln: freeze(py) for ln, py in pys.items()}
    versions.update({f"node-{v}": node_versions(lock) for v, lock in node_locks.items()})
    summary = {"endpoint": a.endpoint if not a.observe else "observe", "latest": a.latest,
               "python": sys.version.split()[0], "venv_seconds": round(t_venvs, 1),
               "total_seconds": round(time.time() - t_start, 1), "clients": results,
               "venvs": {ln: str(py.parent.parent) for ln, py in pys.items()}, "versions": versions}
    (out / "run.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if a.observe:
        import observe
        report = observe.report(out / "spans.jsonl", out / "ground_truth.jsonl")
        (out / "observations.md").write_text(report)
        log(f"observations: {out / 'observations.md'}")
    ok = all(r["ok"] for r in results) and not stray
    log(f"{len(truth)} ground-truth lines -> {out / 'ground_truth.jsonl'}; "
        f"venvs {t_venvs:.1f}s, total {time.time() - t_start:.1f}s; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
