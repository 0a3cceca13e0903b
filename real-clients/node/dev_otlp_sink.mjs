// Development-only OTLP/HTTP trace receiver: accepts POST /v1/traces
// (application/x-protobuf or application/json), decodes it and appends one
// JSON line per span to the output file (or stdout). No dependencies: the
// protobuf reader below knows just the ExportTraceServiceRequest messages.
//
//   node dev_otlp_sink.mjs [port] [out.ndjson]
//
// Prints "PORT=<n>" once listening (like ../fake_provider.py).
import http from 'node:http';
import fs from 'node:fs';

const port = Number(process.argv[2] ?? 0);
const outPath = process.argv[3];
const write = (line) => (outPath ? fs.appendFileSync(outPath, line + '\n') : process.stdout.write(line + '\n'));

// ---- minimal protobuf reader -------------------------------------------

class Reader {
  constructor(buf, start = 0, end = buf.length) { this.buf = buf; this.pos = start; this.end = end; }
  more() { return this.pos < this.end; }
  varint() {
    let result = 0n; let shift = 0n;
    for (;;) {
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  tag() { const t = Number(this.varint()); return [t >>> 3, t & 7]; }
  bytes() { const n = Number(this.varint()); const s = this.pos; this.pos += n; return this.buf.subarray(s, s + n); }
  fixed64() { const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  double() { const v = this.buf.readDoubleLE(this.pos); this.pos += 8; return v; }
  fixed32() { const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  skip(wire) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

// Walk the fields of one message; handlers[field](reader, wire) consumes it.
function message(buf, handlers) {
  const r = new Reader(buf);
  while (r.more()) {
    const [field, wire] = r.tag();
    const h = handlers[field];
    if (h) h(r, wire); else r.skip(wire);
  }
}

const str = (b) => Buffer.from(b).toString('utf8');
const hex = (b) => Buffer.from(b).toString('hex');

function anyValue(buf) {
  let v = null;
  message(buf, {
    1: (r) => { v = str(r.bytes()); },
    2: (r) => { v = r.varint() !== 0n; },
    3: (r) => { v = { int: BigInt.asIntN(64, r.varint()).toString() }; },
    4: (r) => { v = r.double(); },
    5: (r) => { const arr = []; message(r.bytes(), { 1: (rr) => arr.push(anyValue(rr.bytes())) }); v = arr; },
    6: (r) => { v = keyValues(r.bytes(), 1); },
    7: (r) => { v = { bytes: hex(r.bytes()) }; },
  });
  return v;
}

function keyValue(buf) {
  let k = ''; let v = null;
  message(buf, { 1: (r) => { k = str(r.bytes()); }, 2: (r) => { v = anyValue(r.bytes()); } });
  return [k, v];
}

function keyValues(buf, field) {
  const out = {};
  message(buf, { [field]: (r) => { const [k, v] = keyValue(r.bytes()); out[k] = v; } });
  return out;
}

function decodeSpan(buf) {
  const s = { attributes: {}, events: [] };
  message(buf, {
    1: (r) => { s.traceId = hex(r.bytes()); },
    2: (r) => { s.spanId = hex(r.bytes()); },
    4: (r) => { s.parentSpanId = hex(r.bytes()); },
    5: (r) => { s.name = str(r.bytes()); },
    6: (r) => { s.kind = Number(r.varint()); },
    7: (r) => { s.startTimeUnixNano = r.fixed64().toString(); },
    8: (r) => { s.endTimeUnixNano = r.fixed64().toString(); },
    9: (r) => { const [k, v] = keyValue(r.bytes()); s.attributes[k] = v; },
    11: (r) => {
      const e = { attributes: {} };
      message(r.bytes(), {
        1: (rr) => { e.timeUnixNano = rr.fixed64().toString(); },
        2: (rr) => { e.name = str(rr.bytes()); },
        3: (rr) => { const [k, v] = keyValue(rr.bytes()); e.attributes[k] = v; },
      });
      s.events.push(e);
    },
    15: (r) => {
      s.status = {};
      message(r.bytes(), { 2: (rr) => { s.status.message = str(rr.bytes()); }, 3: (rr) => { s.status.code = Number(rr.varint()); } });
    },
    16: (r) => { s.flags = r.fixed32(); },
  });
  return s;
}

function decodeExportRequest(buf) {
  const spans = [];
  message(buf, {
    1: (r) => {
      let resource = {};
      const scopes = [];
      message(r.bytes(), {
        1: (rr) => { resource = keyValues(rr.bytes(), 1); },
        2: (rr) => {
          const scope = { name: '', version: '' }; const ss = [];
          message(rr.bytes(), {
            1: (q) => message(q.bytes(), { 1: (x) => { scope.name = str(x.bytes()); }, 2: (x) => { scope.version = str(x.bytes()); } }),
            2: (q) => ss.push(decodeSpan(q.bytes())),
          });
          scopes.push([scope, ss]);
        },
      });
      for (const [scope, ss] of scopes) for (const s of ss) spans.push({ resource, scope, ...s });
    },
  });
  return spans;
}

// ---- server -------------------------------------------------------------

const server = http.createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    const ctype = req.headers['content-type'] ?? '';
    try {
      if (req.method !== 'POST' || !req.url.startsWith('/v1/traces')) throw new Error(`unexpected ${req.method} ${req.url}`);
      let spans;
      if (ctype.includes('json')) {
        spans = [{ rawJson: JSON.parse(body.toString('utf8')) }];
      } else {
        spans = decodeExportRequest(body);
      }
      for (const s of spans) write(JSON.stringify({ contentType: ctype, ...s }));
      if (ctype.includes('json')) { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); }
      else { res.writeHead(200, { 'content-type': 'application/x-protobuf' }); res.end(); }
    } catch (err) {
      console.error('[dev_otlp_sink]', err);
      res.writeHead(400); res.end(String(err));
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`PORT=${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
