// Real Vercel AI SDK client (npm `ai` + `@ai-sdk/openai` + `@ai-sdk/anthropic`,
// unmodified) with its built-in OpenTelemetry spans (`experimental_telemetry`)
// exported by the OpenTelemetry JS SDK over OTLP/HTTP protobuf.
//
// Environment:
//   FAKE_PROVIDER_URL            provider base URL, e.g. http://127.0.0.1:PORT/v1 (required)
//   OTEL_EXPORTER_OTLP_ENDPOINT  e.g. http://127.0.0.1:4318 (the exporter adds /v1/traces);
//                                read by the OTLP exporter itself, like any OTel app
//   OTEL_SERVICE_NAME            default "vercel_ai"
//   VERCEL_AI_PROVIDERS          comma list, default "openai,anthropic"
//   VERCEL_AI_FLOWS              comma list, default "generate,stream,tool,error,embed"
//   OPENAI_MODEL / ANTHROPIC_MODEL / OPENAI_EMBEDDING_MODEL   model ids
//   FAKE_ERROR_MODEL_OPENAI / FAKE_ERROR_MODEL_ANTHROPIC      model id used by the
//                                error flow (default: the normal model); the error
//                                flow also sends the header `x-fake-status: 429`
//
// Prints one JSON line per flow to stdout (what the SDK itself reported) and
// exits non-zero if a flow failed unexpectedly or the error flow did not fail.
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { generateText, streamText, embed, tool, stepCountIs, APICallError } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { z } from 'zod';

const SERVICE_NAME = process.env.OTEL_SERVICE_NAME || 'vercel_ai';
const baseURL = process.env.FAKE_PROVIDER_URL;
if (!baseURL) {
  console.error('FAKE_PROVIDER_URL is not set (e.g. http://127.0.0.1:8080/v1)');
  process.exit(2);
}

// ---- OpenTelemetry SDK ---------------------------------------------------

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': SERVICE_NAME }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
});
provider.register();

// ---- providers -----------------------------------------------------------

const openai = createOpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY || 'sk-fake' });
const anthropic = createAnthropic({ baseURL, apiKey: process.env.ANTHROPIC_API_KEY || 'sk-ant-fake' });

const PROVIDERS = {
  openai: {
    // openai(...) would use the Responses API; .chat(...) is Chat Completions.
    chat: (id) => openai.chat(id),
    model: process.env.OPENAI_MODEL || 'gpt-4o-mini',
    errorModel: process.env.FAKE_ERROR_MODEL_OPENAI,
    embedding: () => openai.embedding(process.env.OPENAI_EMBEDDING_MODEL || 'text-embedding-3-small'),
  },
  anthropic: {
    chat: (id) => anthropic(id),
    model: process.env.ANTHROPIC_MODEL || 'claude-3-5-haiku-20241022',
    errorModel: process.env.FAKE_ERROR_MODEL_ANTHROPIC,
    embedding: null, // Anthropic has no embeddings API
  },
};

const telemetry = (functionId) => ({
  isEnabled: true,
  functionId,
  metadata: { client: 'llmhub-real-clients' },
});

const weatherTool = tool({
  description: 'Get the current weather for a city',
  inputSchema: z.object({ city: z.string().describe('City name') }),
  execute: async ({ city }) => ({ city, temperatureC: 21, condition: 'sunny' }),
});

const usageOf = (u) => u && {
  inputTokens: u.inputTokens,
  outputTokens: u.outputTokens,
  totalTokens: u.totalTokens,
  cachedInputTokens: u.cachedInputTokens,
  inputTokenDetails: u.inputTokenDetails,
};

// ---- flows ---------------------------------------------------------------

const FLOWS = {
  async generate(p, name) {
    const r = await generateText({
      model: p.chat(p.model),
      prompt: 'Say hello in one short sentence.',
      experimental_telemetry: telemetry(`${name}.generate`),
    });
    return { text: r.text, finishReason: r.finishReason, usage: usageOf(r.usage) };
  },

  async stream(p, name) {
    const r = streamText({
      model: p.chat(p.model),
      prompt: 'Stream a short greeting.',
      experimental_telemetry: telemetry(`${name}.stream`),
    });
    let text = '';
    for await (const delta of r.textStream) text += delta;
    return { text, finishReason: await r.finishReason, usage: usageOf(await r.usage), totalUsage: usageOf(await r.totalUsage) };
  },

  async tool(p, name) {
    const r = await generateText({
      model: p.chat(p.model),
      prompt: 'What is the weather in Paris? Use the tool.',
      tools: { getWeather: weatherTool },
      stopWhen: stepCountIs(3), // step 1: tool call, step 2: final answer
      experimental_telemetry: telemetry(`${name}.tool`),
    });
    return {
      steps: r.steps.length,
      toolCalls: r.steps.flatMap((s) => s.toolCalls.map((c) => c.toolName)),
      text: r.text,
      lastStepUsage: usageOf(r.usage),
      totalUsage: usageOf(r.totalUsage),
    };
  },

  async error(p, name) {
    try {
      await generateText({
        model: p.chat(p.errorModel || p.model),
        prompt: 'This call is expected to be rate limited.',
        headers: { 'x-fake-status': '429' },
        maxRetries: Number(process.env.VERCEL_AI_ERROR_RETRIES ?? 0),
        experimental_telemetry: telemetry(`${name}.error`),
      });
    } catch (err) {
      const status = APICallError.isInstance(err) ? err.statusCode : (err?.lastError?.statusCode ?? null);
      return { expectedError: true, errorName: err?.name, statusCode: status };
    }
    throw new Error('error flow: the call did not fail');
  },

  async embed(p, name) {
    if (!p.embedding) return { skipped: 'provider has no embeddings' };
    const r = await embed({
      model: p.embedding(),
      value: 'sunny day at the beach',
      experimental_telemetry: telemetry(`${name}.embed`),
    });
    return { dimensions: r.embedding.length, usage: r.usage };
  },
};

const list = (v, d) => (v || d).split(',').map((s) => s.trim()).filter(Boolean);
const providerNames = list(process.env.VERCEL_AI_PROVIDERS, 'openai,anthropic');
const flowNames = list(process.env.VERCEL_AI_FLOWS, 'generate,stream,tool,error,embed');

let failures = 0;
const t0 = Date.now();
for (const pn of providerNames) {
  const p = PROVIDERS[pn];
  if (!p) { console.error(`unknown provider ${pn}`); failures++; continue; }
  for (const fn of flowNames) {
    const flow = FLOWS[fn];
    if (!flow) { console.error(`unknown flow ${fn}`); failures++; continue; }
    const started = Date.now();
    try {
      const result = await flow(p, pn);
      console.log(JSON.stringify({ provider: pn, flow: fn, ok: true, ms: Date.now() - started, ...result }));
    } catch (err) {
      failures++;
      console.log(JSON.stringify({ provider: pn, flow: fn, ok: false, ms: Date.now() - started, error: String(err?.message ?? err) }));
    }
  }
}

// Export everything before exiting: forceFlush, then shutdown.
try {
  await provider.forceFlush();
  await provider.shutdown();
} catch (err) {
  console.error('tracer provider flush/shutdown failed:', err);
  failures++;
}
console.error(`vercel_ai: ${providerNames.length * flowNames.length - failures} ok, ${failures} failed, ${Date.now() - t0} ms`);
process.exit(failures ? 1 : 0);
