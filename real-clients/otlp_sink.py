#!/usr/bin/env python3
"""A tiny OTLP/HTTP trace receiver for observing what the instrumentations emit (debug aid, not llmhub).

Runs with any client venv's python (it needs `opentelemetry-proto`, which the OTLP exporter pulls in).
    python otlp_sink.py OUT.jsonl [PORT]      # PORT 0 (default) = pick one; prints PORT=<n> first
Accepts POST /v1/traces (protobuf or JSON, optionally gzip). /v1/metrics and /v1/logs get 200 and are dropped.
Each span becomes one JSON line: service, scope, scope_version, name, kind, trace_id, span_id, parent_span_id,
status, status_message, start_ns, end_ns, attributes (dict), events (names).
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_lock = threading.Lock()


def anyvalue(v):
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [anyvalue(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: anyvalue(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def attrs(kvs):
    return {kv.key: anyvalue(kv.value) for kv in kvs}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    out_path = ""

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        if self.path.rstrip("/").endswith("/v1/traces"):
            req = ExportTraceServiceRequest()
            if "json" in self.headers.get("Content-Type", ""):
                Parse(body.decode(), req)
            else:
                req.ParseFromString(body)
            lines = []
            for rs in req.resource_spans:
                res = attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        lines.append(json.dumps({
                            "service": res.get("service.name"), "scope": ss.scope.name,
                            "scope_version": ss.scope.version, "name": sp.name, "kind": KINDS.get(sp.kind),
                            "trace_id": sp.trace_id.hex(), "span_id": sp.span_id.hex(),
                            "parent_span_id": sp.parent_span_id.hex() or None,
                            "status": STATUS.get(sp.status.code), "status_message": sp.status.message,
                            "start_ns": sp.start_time_unix_nano, "end_ns": sp.end_time_unix_nano,
                            "attributes": attrs(sp.attributes), "events": [e.name for e in sp.events],
                        }, sort_keys=True))
            with _lock, open(self.out_path, "a", encoding="utf-8") as f:
                for line in lines:
                    f.write(line + "\n")
            data = ExportTraceServiceResponse().SerializeToString()
        else:
            data = b""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    H.out_path = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    print(f"PORT={srv.server_address[1]}", flush=True)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
