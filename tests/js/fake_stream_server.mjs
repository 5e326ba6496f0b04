// A fake OpenAI-compatible streaming server for testing `vllmc bench serve`
// without a model: node's http module only.
//   node tests/js/fake_stream_server.mjs PORT     (0 = any; prints "listening PORT", then
//                                                   "REQ METHOD URL ua=<User-Agent>" per request)
// GET /v1/models lists "fake-model". POST /v1/completions streams max_tokens
// one-character text chunks ~2 ms apart as SSE (chunked transfer), then a
// finish_reason "length" chunk, a usage chunk when stream_options.include_usage,
// and "data: [DONE]". An empty prompt list is a 400 in vLLM's error shape.
// Other framings, chosen by the request's model name, test the client's parsers:
//   fake-model-length   the whole SSE body at once with Content-Length
//   fake-model-close    raw HTTP/1.1, no length: the body ends when the connection closes
//   fake-model-error    every second request of this model (the 2nd, 4th, ...): one text chunk, then
//                       an SSE {"error": ...} event; the others stream normally
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
let errorModelCalls = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function chunk(text, finish) {
  return {
    id: 'cmpl-x', object: 'text_completion', created: 1, model: 'fake-model',
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null }],
    usage: null,
  };
}

async function completions(req, res, body) {
  let r;
  try {
    r = JSON.parse(body);
  } catch {
    return sendJson(res, 400, { error: { message: 'invalid JSON', type: 'BadRequestError', param: null, code: 400 } });
  }
  const prompt = r.prompt;
  if (!Array.isArray(prompt) || prompt.length === 0)
    return sendJson(res, 400, { error: { message: 'bad', type: 'BadRequestError', param: null, code: 400 } });
  const maxTokens = Number.isInteger(r.max_tokens) ? r.max_tokens : 16;
  if (!r.stream) {
    return sendJson(res, 200, {
      id: 'cmpl-x', object: 'text_completion', created: 1, model: 'fake-model',
      choices: [{ index: 0, text: 'a'.repeat(maxTokens), logprobs: null, finish_reason: 'length', stop_reason: null }],
      usage: { prompt_tokens: prompt.length, completion_tokens: maxTokens, total_tokens: prompt.length + maxTokens },
    });
  }
  if (r.model === 'fake-model-length' || r.model === 'fake-model-close') {
    let sse = '';
    for (let i = 0; i < maxTokens; i++) sse += `data: ${JSON.stringify(chunk('a', null))}\n\n`;
    sse += `data: ${JSON.stringify(chunk('', 'length'))}\n\ndata: [DONE]\n\n`;
    if (r.model === 'fake-model-length') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Content-Length': Buffer.byteLength(sse) });
      return res.end(sse);
    }
    const sock = res.socket;
    sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n');
    for (let i = 0; i < 3; i++) {
      await sleep(2);
      sock.write(sse.slice((i * sse.length) / 3, ((i + 1) * sse.length) / 3));
    }
    return sock.end();
  }
  // no Content-Length: node sends Transfer-Encoding: chunked
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const send = (obj) => res.write(`data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`);
  if (r.model === 'fake-model-error' && ++errorModelCalls % 2 === 0) {
    send(chunk('a', null));
    send({ error: { message: 'engine died', type: 'InternalServerError', param: null, code: 500 } });
    return res.end();
  }
  for (let i = 0; i < maxTokens; i++) {
    if (res.destroyed) return;
    await sleep(2);
    send(chunk('a', null));
  }
  send(chunk('', 'length'));
  if (r.stream_options && r.stream_options.include_usage) {
    send({
      id: 'cmpl-x', object: 'text_completion', created: 1, model: 'fake-model', choices: [],
      usage: { prompt_tokens: prompt.length, completion_tokens: maxTokens, total_tokens: prompt.length + maxTokens },
    });
  }
  send('[DONE]');
  res.end();
}

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    console.log(`REQ ${req.method} ${req.url} ua=${req.headers['user-agent'] ?? '-'}`);
    if (req.method === 'GET' && req.url === '/v1/models')
      return sendJson(res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model' }] });
    if (req.method === 'POST' && req.url === '/v1/completions') return void completions(req, res, body);
    sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'NotFoundError', param: null, code: 404 } });
  });
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
