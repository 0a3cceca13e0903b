// Print the span trees written by dev_otlp_sink.mjs, with the usage-related
// attributes of each span.   node summarize_spans.mjs spans.ndjson [--all]
import fs from 'node:fs';

const [file, flag] = process.argv.slice(2);
const all = flag === '--all';
const spans = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const show = (k) => all || /usage|^gen_ai\.(system|request\.model|response\.model)$|^ai\.operationId$|^ai\.model\.provider$|^operation\.name$|^ai\.response\.finishReason$|^ai\.toolCall\.name$|^gen_ai\.(operation\.name|provider\.name|tool\.name|agent\.name)$|^server\.(address|port)$/.test(k);
const fmt = (v) => (v && typeof v === 'object' && 'int' in v ? v.int : JSON.stringify(v));

const byTrace = new Map();
for (const s of spans) {
  if (!byTrace.has(s.traceId)) byTrace.set(s.traceId, []);
  byTrace.get(s.traceId).push(s);
}
const services = new Set(spans.map((s) => fmt(s.resource?.['service.name'])));
console.log(`${spans.length} spans, ${byTrace.size} traces, service.name=${[...services].join(',')}, content-type=${[...new Set(spans.map((s) => s.contentType))].join(',')}`);
for (const [tid, list] of byTrace) {
  const ids = new Set(list.map((s) => s.spanId));
  const kids = new Map();
  for (const s of list) {
    const p = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : 'root';
    if (!kids.has(p)) kids.set(p, []);
    kids.get(p).push(s);
  }
  console.log(`trace ${tid}`);
  const walk = (id, depth) => {
    for (const s of (kids.get(id) ?? []).sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1))) {
      const st = s.status?.code ? ` status=${s.status.code}${s.status.message ? ` "${s.status.message.slice(0, 60)}"` : ''}` : '';
      console.log(`${'  '.repeat(depth + 1)}${s.name} [kind=${s.kind} scope=${s.scope?.name}]${st}`);
      for (const [k, v] of Object.entries(s.attributes)) if (show(k)) console.log(`${'  '.repeat(depth + 3)}${k} = ${fmt(v)}`);
      for (const e of s.events) console.log(`${'  '.repeat(depth + 3)}event ${e.name} ${Object.keys(e.attributes).join(',')}`);
      walk(s.spanId, depth + 1);
    }
  };
  walk('root', 0);
}
