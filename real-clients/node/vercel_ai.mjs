// Real Vercel AI SDK client (npm `ai` + `@ai-sdk/openai` + `@ai-sdk/anthropic`,
// unmodified) with the SDK's own OpenTelemetry spans, exported by the
// OpenTelemetry JS SDK (NodeTracerProvider + BatchSpanProcessor +
// OTLPTraceExporter, http/protobuf).
//
// Two pinned package sets (see README.md); the script finds out which one it
// runs with (does `ai` export registerTelemetry?):
//   v6 (package.json here):  spans are emitted by `ai` itself for calls that pass
//                            `experimental_telemetry: { isEnabled: true }`
//   v7 (v7/package.json):    spans are emitted by `@ai-sdk/otel`, registered once with
//                            registerTelemetry(); the per-call option is `telemetry`.
//                            AI_OTEL_INTEGRATION=modern (default: OpenTelemetry, gen_ai.*
//                            semconv spans) or legacy (LegacyOpenTelemetry, v6-style ai.* spans)
//
// Environment (the real-clients harness contract, see ../clients/_common.py):
//   HARNESS_CLIENT               client name: the `client=` tag sent to the fake (default vercel_ai)
//   OTEL_SERVICE_NAME            service.name (default: HARNESS_CLIENT, else vercel_ai)
//   FAKE_PROVIDER_URL            http://127.0.0.1:PORT of the fake provider (a trailing /v1 is accepted)
//   OTEL_EXPORTER_OTLP_ENDPOINT  base OTLP/HTTP endpoint; the exporter itself reads it and
//                                appends /v1/traces
//   HARNESS_FLOWS                optional comma list: run only these flows
//   HARNESS_PARENT_SPAN          "0" disables the per-flow parent span `harness.flow <flow>`
//   HARNESS_CONSOLE              "1" also prints every span (OTel ConsoleSpanExporter, to stdout)
//   VERCEL_AI_ERROR_RETRIES      maxRetries of the error flows (default 0; the SDK default is 2)
//
// Each request goes to FAKE/x/client=<client>,flow=<flow>[,fail=<status>]/v1/..., so the fake's
// ground-truth lines name the flow. The last stdout line is the harness summary:
//   {"client": ..., "ok": bool, "flows": [{"client","flow","ok","seconds","raised"|"result"|"error","sdk"}]}
// ("sdk" = what the AI SDK returned to the caller, e.g. its usage). Exit code 0 iff all flows ok.
import fs from 'node:fs';
import { context, trace, SpanKind } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { z } from 'zod';

const NAME = process.env.HARNESS_CLIENT || 'vercel_ai';
const SERVICE_NAME = process.env.OTEL_SERVICE_NAME || NAME;
const FAKE = (process.env.FAKE_PROVIDER_URL || '').replace(/\/+$/, '').replace(/\/v1$/, '');
if (!FAKE) {
  console.error('FAKE_PROVIDER_URL is not set (e.g. http://127.0.0.1:8080)');
  process.exit(2);
}
const ONLY = new Set((process.env.HARNESS_FLOWS || '').split(',').map((s) => s.trim()).filter(Boolean));
const PARENT_SPAN = process.env.HARNESS_PARENT_SPAN !== '0';
const ERROR_RETRIES = Number(process.env.VERCEL_AI_ERROR_RETRIES ?? 0);

// Same models as the Python clients (../clients/_common.py), all priced in prices/.
const OPENAI_CHAT = 'gpt-4o-mini';
const OPENAI_STREAM = 'gpt-4o';
const OPENAI_REASONING = 'o4-mini';
const OPENAI_EMBED = 'text-embedding-3-small';
const ANTHROPIC_CHAT = 'claude-sonnet-4-20250514';
const ANTHROPIC_STREAM = 'claude-haiku-4-5-20251001';

// ---- OpenTelemetry SDK ----------------------------------------------------

const provider = new NodeTracerProvider({
  // defaultResource() adds telemetry.sdk.*; service.name is ours.
  resource: defaultResource().merge(resourceFromAttributes({ 'service.name': SERVICE_NAME })),
  spanProcessors: [
    new BatchSpanProcessor(new OTLPTraceExporter()),
    ...(process.env.HARNESS_CONSOLE === '1' ? [new SimpleSpanProcessor(new ConsoleSpanExporter())] : []),
  ],
});
provider.register();
const harnessTracer = trace.getTracer('harness');

// AI SDK 7 moved span creation into @ai-sdk/otel.
let telemetryOption = 'experimental_telemetry';
let integration = 'built into ai';
if (typeof ai.registerTelemetry === 'function') {
  const otel = await import('@ai-sdk/otel');
  const legacy = process.env.AI_OTEL_INTEGRATION === 'legacy';
  ai.registerTelemetry(legacy ? new otel.LegacyOpenTelemetry() : new otel.OpenTelemetry());
  telemetryOption = 'telemetry';
  integration = `@ai-sdk/otel ${legacy ? 'LegacyOpenTelemetry' : 'OpenTelemetry'}`;
}
const { generateText, streamText, embed, tool, stepCountIs } = ai;

const telemetry = (flow) => ({ [telemetryOption]: { isEnabled: true, functionId: flow } });

// ---- providers (one per flow: the flow is part of the base URL) -----------

const baseURL = (flow, fail) => `${FAKE}/x/client=${NAME},flow=${flow}${fail ? `,fail=${fail}` : ''}/v1`;
const openai = (flow, fail) =>
  createOpenAI({ baseURL: baseURL(flow, fail), apiKey: process.env.OPENAI_API_KEY || 'sk-fake-harness' });
const anthropic = (flow, fail) =>
  createAnthropic({ baseURL: baseURL(flow, fail), apiKey: process.env.ANTHROPIC_API_KEY || 'sk-ant-fake-harness' });

const weatherTool = tool({
  description: 'Current weather for a city.',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, temperature_c: 21, sky: 'clear' }),
});

const usageOf = (u) => u && {
  inputTokens: u.inputTokens,
  outputTokens: u.outputTokens,
  totalTokens: u.totalTokens,
  reasoningTokens: u.reasoningTokens ?? u.outputTokenDetails?.reasoningTokens,
  cachedInputTokens: u.cachedInputTokens ?? u.inputTokenDetails?.cacheReadTokens,
  cacheWriteTokens: u.inputTokenDetails?.cacheWriteTokens,
};

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

async function generate(flow, model) {
  const r = await generateText({ model, prompt: 'Say hello.', ...telemetry(flow) });
  check(r.text, 'text');
  return { text: r.text, finishReason: r.finishReason, usage: usageOf(r.usage) };
}

async function stream(flow, model) {
  const r = streamText({ model, prompt: 'Stream a hello.', ...telemetry(flow) });
  let text = '';
  for await (const delta of r.textStream) text += delta;
  const usage = await r.usage;
  check(text, 'streamed text');
  check(usage?.outputTokens > 0, 'stream usage');
  return { text, finishReason: await r.finishReason, usage: usageOf(usage) };
}

async function toolLoop(flow, model) {
  const r = await generateText({
    model,
    prompt: 'What is the weather in Paris?',
    tools: { get_weather: weatherTool },
    stopWhen: stepCountIs(3), // step 1 answers with the tool call, step 2 with text
    ...telemetry(flow),
  });
  check(r.steps.length === 2, `2 steps, got ${r.steps.length}`);
  check(r.steps[0].toolCalls.length === 1, 'a tool call in step 1');
  return {
    steps: r.steps.length,
    stepUsage: r.steps.map((s) => usageOf(s.usage)),
    totalUsage: usageOf(r.totalUsage),
  };
}

async function failing(flow, model) {
  await generateText({ model, prompt: 'This one is rate limited.', maxRetries: ERROR_RETRIES, ...telemetry(flow) });
}

const FLOWS = {
  openai_chat: () => generate('openai_chat', openai('openai_chat').chat(OPENAI_CHAT)),
  openai_reasoning: () => generate('openai_reasoning', openai('openai_reasoning').chat(OPENAI_REASONING)),
  openai_stream: () => stream('openai_stream', openai('openai_stream').chat(OPENAI_STREAM)),
  openai_tool: () => toolLoop('openai_tool', openai('openai_tool').chat(OPENAI_CHAT)),
  openai_error: () => failing('openai_error', openai('openai_error', 429).chat(OPENAI_CHAT)),
  openai_embeddings: async () => {
    const r = await embed({
      model: openai('openai_embeddings').embedding(OPENAI_EMBED),
      value: 'The quick brown fox.',
      ...telemetry('openai_embeddings'),
    });
    check(r.embedding.length > 0, 'embedding');
    return { dimensions: r.embedding.length, usage: r.usage };
  },
  // openai(model) is the Responses API, the AI SDK's default for OpenAI since v5.
  openai_responses: () => generate('openai_responses', openai('openai_responses').responses(OPENAI_REASONING)),
  openai_responses_stream: () => stream('openai_responses_stream', openai('openai_responses_stream').responses(OPENAI_CHAT)),
  anthropic_chat: () => generate('anthropic_chat', anthropic('anthropic_chat')(ANTHROPIC_CHAT)),
  anthropic_stream: () => stream('anthropic_stream', anthropic('anthropic_stream')(ANTHROPIC_STREAM)),
  anthropic_tool: () => toolLoop('anthropic_tool', anthropic('anthropic_tool')(ANTHROPIC_CHAT)),
  anthropic_error: () => failing('anthropic_error', anthropic('anthropic_error', 429)(ANTHROPIC_CHAT)),
};
const EXPECT_ERROR = new Set(['openai_error', 'anthropic_error']);

// ---- runner ---------------------------------------------------------------

async function runFlow(flow) {
  const t0 = performance.now();
  const res = { client: NAME, flow, ok: false };
  const call = async () => {
    if (EXPECT_ERROR.has(flow)) {
      try {
        await FLOWS[flow]();
      } catch (err) {
        res.ok = true;
        res.raised = err?.name ?? typeof err;
        res.sdk = { statusCode: err?.statusCode ?? err?.lastError?.statusCode ?? null, message: String(err?.message ?? err).slice(0, 200) };
        return;
      }
      throw new Error('the error flow did not raise');
    }
    const out = await FLOWS[flow]();
    res.ok = true;
    res.result = JSON.stringify(out).slice(0, 200);
    res.sdk = out;
  };
  try {
    if (PARENT_SPAN) {
      const span = harnessTracer.startSpan(`harness.flow ${flow}`, {
        kind: SpanKind.INTERNAL,
        attributes: { 'harness.client': NAME, 'harness.flow': flow },
      });
      try {
        await context.with(trace.setSpan(context.active(), span), call);
      } finally {
        span.end();
      }
    } else {
      await call();
    }
  } catch (err) {
    res.error = `${err?.name ?? 'Error'}: ${err?.message ?? err}`;
    console.error(`flow ${flow} failed:`, err);
  }
  res.seconds = Math.round(performance.now() - t0) / 1000;
  return res;
}

const pkgVersion = (name) => {
  try { return JSON.parse(fs.readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version; }
  catch { return '?'; }
};
console.error(`${NAME}: ai ${pkgVersion('ai')}, @ai-sdk/openai ${pkgVersion('@ai-sdk/openai')}, `
  + `@ai-sdk/anthropic ${pkgVersion('@ai-sdk/anthropic')}, spans: ${integration}, node ${process.versions.node}`);

const unknown = [...ONLY].filter((f) => !FLOWS[f]);
const results = [];
for (const u of unknown) results.push({ client: NAME, flow: u, ok: false, error: 'unknown flow', seconds: 0 });
for (const flow of Object.keys(FLOWS)) {
  if (ONLY.size && !ONLY.has(flow)) continue;
  results.push(await runFlow(flow));
}

// Export everything before exiting.
try {
  await provider.forceFlush();
  await provider.shutdown();
} catch (err) {
  console.error('tracer provider flush/shutdown failed:', err);
  results.push({ client: NAME, flow: '_export', ok: false, error: String(err), seconds: 0 });
}
const ok = results.length > 0 && results.every((r) => r.ok);
console.log(JSON.stringify({ client: NAME, ok, flows: results }));
process.exit(ok ? 0 : 1);
