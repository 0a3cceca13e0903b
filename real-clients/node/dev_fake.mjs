// Development-only fake LLM provider (OpenAI chat completions + embeddings,
// Anthropic messages; JSON and SSE), written before ../fake_provider.py existed.
// `run.sh selftest` uses ../fake_provider.py when it is there and this one
// otherwise (then the two Responses API flows fail: not implemented here).
// Listens on loopback only.
//
//   node dev_fake.mjs [port]      (port 0 / absent = ephemeral)
//
// Prints "PORT=<n>" once listening, like ../fake_provider.py.
//
// Paths may carry the harness tag prefix /x/<k=v,...>/ (e.g.
// /x/client=vercel_ai,flow=openai_error,fail=429/v1/chat/completions); a
// `fail=<status>` tag or an `X-Fake-Fail: <status>` header makes the fake answer
// with that HTTP status and a provider-shaped error body.
//
// Fixed usage numbers (so span attributes can be checked exactly):
//   OpenAI chat JSON:   prompt 20 (cached 8), completion 7, reasoning 0
//   OpenAI chat SSE:    prompt 21 (cached 0), completion 9
//   OpenAI embeddings:  prompt 5
//   Anthropic JSON:     input 15, output 6, cache_read 100, cache_creation 50
//   Anthropic SSE:      input 16, output 10, cache_read 0, cache_creation 30
import http from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function startSse(res) {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
}

let counter = 0;
const nextId = (prefix) => `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}`;

function requestedError(req, tags) {
  const v = tags.fail ?? req.headers['x-fake-fail'];
  return v && /^\d{3}$/.test(v) ? Number(v) : null;
}

// "/x/client=a,flow=b,fail=429/v1/..." -> [{client:'a', flow:'b', fail:'429'}, '/v1/...']
function splitTags(pathname) {
  const m = /^\/x\/([^/]*)(\/.*)$/.exec(pathname);
  if (!m) return [{}, pathname];
  const tags = {};
  for (const kv of decodeURIComponent(m[1]).split(',')) {
    const i = kv.indexOf('=');
    if (i > 0) tags[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return [tags, m[2]];
}

// ---- OpenAI -------------------------------------------------------------

function openaiWantsTool(body) {
  const msgs = body.messages ?? [];
  const last = msgs[msgs.length - 1];
  return Array.isArray(body.tools) && body.tools.length > 0 && last && last.role !== 'tool';
}

function openaiToolCall(body) {
  const fn = body.tools[0].function;
  return { id: nextId('call_'), type: 'function', function: { name: fn.name, arguments: JSON.stringify({ city: 'Paris' }) } };
}

function openaiChat(req, res, body) {
  const model = body.model;
  const created = Math.floor(Date.now() / 1000);
  const id = nextId('chatcmpl-');
  const tool = openaiWantsTool(body) ? openaiToolCall(body) : null;
  const text = tool ? null : 'Hello from the fake OpenAI provider.';

  if (!body.stream) {
    return sendJson(res, 200, {
      id, object: 'chat.completion', created, model,
      choices: [{
        index: 0,
        message: tool ? { role: 'assistant', content: null, tool_calls: [tool] } : { role: 'assistant', content: text },
        finish_reason: tool ? 'tool_calls' : 'stop',
      }],
      usage: {
        prompt_tokens: 20, completion_tokens: 7, total_tokens: 27,
        prompt_tokens_details: { cached_tokens: 8 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
  }

  startSse(res);
  const chunk = (choices, extra = {}) =>
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`);
  chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
  if (tool) {
    chunk([{ index: 0, delta: { tool_calls: [{ index: 0, id: tool.id, type: 'function', function: { name: tool.function.name, arguments: '' } }] }, finish_reason: null }]);
    chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: tool.function.arguments } }] }, finish_reason: null }]);
    chunk([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]);
  } else {
    for (const piece of ['Hello ', 'from ', 'the ', 'fake ', 'stream.']) {
      chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]);
    }
    chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]);
  }
  if (body.stream_options?.include_usage) {
    chunk([], { usage: { prompt_tokens: 21, completion_tokens: 9, total_tokens: 30, prompt_tokens_details: { cached_tokens: 0 } } });
  }
  res.write('data: [DONE]\n\n');
  res.end();
}

function openaiEmbeddings(req, res, body) {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  sendJson(res, 200, {
    object: 'list',
    model: body.model,
    data: inputs.map((_, i) => ({ object: 'embedding', index: i, embedding: [0.1, 0.2, 0.3, 0.4] })),
    usage: { prompt_tokens: 5 * inputs.length, total_tokens: 5 * inputs.length },
  });
}

function openaiError(res, status) {
  sendJson(res, status, {
    error: {
      message: status === 429 ? 'Rate limit reached (fake)' : `Fake error ${status}`,
      type: status === 429 ? 'rate_limit_exceeded' : 'server_error',
      param: null,
      code: status === 429 ? 'rate_limit_exceeded' : null,
    },
  });
}

// ---- Anthropic ----------------------------------------------------------

function anthropicWantsTool(body) {
  const msgs = body.messages ?? [];
  const last = msgs[msgs.length - 1];
  if (!Array.isArray(body.tools) || body.tools.length === 0 || !last) return false;
  const hasResult = Array.isArray(last.content) && last.content.some((p) => p.type === 'tool_result');
  return !hasResult;
}

function anthropicMessages(req, res, body) {
  const model = body.model;
  const id = nextId('msg_');
  const tool = anthropicWantsTool(body) ? { type: 'tool_use', id: nextId('toolu_'), name: body.tools[0].name, input: { city: 'Paris' } } : null;
  const text = 'Hello from the fake Anthropic provider.';

  if (!body.stream) {
    return sendJson(res, 200, {
      id, type: 'message', role: 'assistant', model,
      content: tool ? [tool] : [{ type: 'text', text }],
      stop_reason: tool ? 'tool_use' : 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 15, output_tokens: 6, cache_read_input_tokens: 100, cache_creation_input_tokens: 50 },
    });
  }

  startSse(res);
  const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  ev('message_start', {
    message: {
      id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
      usage: { input_tokens: 16, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 30 },
    },
  });
  if (tool) {
    ev('content_block_start', { index: 0, content_block: { type: 'tool_use', id: tool.id, name: tool.name, input: {} } });
    ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(tool.input) } });
    ev('content_block_stop', { index: 0 });
  } else {
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    for (const piece of ['Hello ', 'from ', 'the ', 'fake ', 'stream.']) {
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } });
    }
    ev('content_block_stop', { index: 0 });
  }
  ev('message_delta', { delta: { stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: 10 } });
  ev('message_stop', {});
  res.end();
}

function anthropicError(res, status) {
  sendJson(res, status, {
    type: 'error',
    error: { type: status === 429 ? 'rate_limit_error' : 'api_error', message: `Fake error ${status}` },
  });
}

// ---- server -------------------------------------------------------------

const server = http.createServer(async (req, res) => {
  try {
    const raw = req.method === 'POST' ? await readBody(req) : '';
    const body = raw ? JSON.parse(raw) : {};
    const [tags, path] = splitTags(new URL(req.url, 'http://x').pathname);
    const status = requestedError(req, tags);
    if (process.env.DEV_FAKE_LOG) console.error(`[dev_fake] ${req.method} ${path} ${JSON.stringify(tags)} model=${body.model} stream=${!!body.stream}${status ? ` -> ${status}` : ''}`);
    if (path.endsWith('/chat/completions')) return status ? openaiError(res, status) : openaiChat(req, res, body);
    if (path.endsWith('/embeddings')) return status ? openaiError(res, status) : openaiEmbeddings(req, res, body);
    if (path.endsWith('/messages')) return status ? anthropicError(res, status) : anthropicMessages(req, res, body);
    sendJson(res, 404, { error: { message: `no route ${path}` } });
  } catch (err) {
    sendJson(res, 500, { error: { message: String(err) } });
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`PORT=${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
