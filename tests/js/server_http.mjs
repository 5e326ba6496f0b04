// `vllmc serve` over raw HTTP: the 400 battery (status, {"error": {message, type, param, code}},
// the server survives), 404/405, API keys (401 {"error":"Unauthorized"} on /v1/* only),
// /health /ping /version, /tokenize and /detokenize, /metrics (names, counters, gauges), and a
// streaming request cut by the client (the request is aborted: num_requests_running back to 0).
//
// Expected values are vLLM's (V1 OpenAI server, ~0.10/0.11). Error `type`: vLLM returns
// "BadRequestError" for errors raised while serving (sampling parameters, lengths, logprobs
// limit: OpenAIServing.create_error_response) but "Bad Request" (HTTPStatus.BAD_REQUEST.phrase)
// for errors raised by FastAPI/pydantic before the handler runs (malformed JSON, wrong types,
// wrong Content-Type, undecodable body, pydantic model validators such as stream_options
// without stream): api_server.py's RequestValidationError and HTTPException handlers.
//
// Usage (from the repository root): node tests/js/server_http.mjs
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import {
  Checks, startServer, startServerOrExit, request, get, post, streamPost, fetchMetrics, metricSum, sleep, MODEL_NAME,
  BOS, IM_START, IM_END, LETTERS, textIds,
} from "./server_util.mjs";

const C = new Checks("server_http.mjs (raw HTTP)");
const model = MODEL_NAME;
const srv = await startServerOrExit(C, [], { name: "http" });
C.ok(`server starts (port ${srv.port})`);
const port = srv.port;
const SERVE = "BadRequestError"; // raised while serving
const PYD = "Bad Request";       // FastAPI / pydantic level
const ANY = null;                // vLLM's type depends on the layer that catches it; not checked

function assertErrorShape(r, status, type) {
  assert.equal(r.status, status, `HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  assert.ok(r.json && typeof r.json === "object" && r.json.error && typeof r.json.error === "object",
    `body is not {"error": {...}}: ${r.text.slice(0, 300)}`);
  const e = r.json.error;
  assert.equal(typeof e.message, "string");
  assert.ok(e.message.length > 0, "empty message");
  assert.ok("param" in e, `no "param" key: ${r.text.slice(0, 300)}`);
  assert.equal(e.code, status, `code ${e.code}`);
  assert.equal(typeof e.type, "string");
  if (type) assert.equal(e.type, type, `type ${JSON.stringify(e.type)} (message: ${e.message.slice(0, 200)})`);
  assert.match(String(r.headers["content-type"]), /^application\/json/);
}

// --- basic endpoints ---------------------------------------------------------------------
await C.check("GET /health -> 200", async () => { assert.equal((await get(port, "/health")).status, 200); });
await C.check("log lines are vllmc's own: \"listening on\", the access log's protocol as the client sent it", async () => {
  const raw = (line) => new Promise((res, rej) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.write(`${line}\r\nHost: x\r\n\r\n`));
    let got = "";
    sock.on("data", (d) => (got += d));
    sock.on("end", () => res(got));
    sock.on("error", rej);
  });
  const r10 = await raw("GET /version HTTP/1.0");
  assert.match(r10, /^HTTP\/1\.[01] 200/, r10.slice(0, 200));
  let log = "";
  for (let i = 0; i < 40 && !/"GET \/version HTTP\/1\.0" 200/.test(log); i++) { await sleep(25); log = srv.log(); }
  assert.match(log, /INFO vllmc: [0-9.]+:\d+ - "GET \/version HTTP\/1\.0" 200 OK/, log.slice(-1500));
  assert.match(log, /INFO vllmc: [0-9.]+:\d+ - "GET \/health HTTP\/1\.1" 200 OK/);
  assert.match(log, /INFO vllmc: listening on http:\/\/127\.0\.0\.1:\d+ /);
  assert.match(log, /INFO vllmc: device \w+: /);
  assert.doesNotMatch(log, /Uvicorn|INFO:     |Application startup/);
});
await C.check("GET /ping and POST /ping -> 200", async () => {
  assert.equal((await get(port, "/ping")).status, 200);
  assert.equal((await request(port, "POST", "/ping")).status, 200);
});
await C.check("GET /version -> {\"version\": string}", async () => {
  const r = await get(port, "/version");
  assert.equal(r.status, 200);
  assert.equal(typeof r.json?.version, "string");
  assert.ok(r.json.version.length > 0);
});
await C.check("GET /v1/models -> {object: list, data: [{id: test-model, object: model, owned_by: vllm}]}", async () => {
  const r = await get(port, "/v1/models");
  assert.equal(r.status, 200);
  assert.equal(r.json.object, "list");
  assert.deepEqual(r.json.data.map((m) => [m.id, m.object, m.owned_by]), [[model, "model", "vllm"]]);
});
await C.check("keep-alive: 3 requests over one connection", async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set();
  for (let i = 0; i < 3; i++) {
    const r = await new Promise((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/v1/models", agent }, (res) => {
        sockets.add(res.socket);
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(r, 200);
  }
  agent.destroy();
  assert.equal(sockets.size, 1, `${sockets.size} sockets used`);
});

await C.check("Content-Type \"application/json; charset=utf-8\" and \"Application/JSON\" are accepted", async () => {
  for (const ct of ["application/json; charset=utf-8", "Application/JSON"]) {
    const r = await request(port, "POST", "/v1/completions", { body: { model, prompt: "hi", max_tokens: 2 }, headers: { "Content-Type": ct } });
    assert.equal(r.status, 200, `${ct}: ${r.text.slice(0, 200)}`);
  }
});
await C.check("a chunked request body (no Content-Length) is read", async () => {
  const r = await new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/v1/completions", agent: false,
      headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" } }, (res) => {
      let t = "";
      res.on("data", (c) => (t += c));
      res.on("end", () => resolve({ status: res.statusCode, text: t }));
    });
    req.on("error", reject);
    const body = JSON.stringify({ model, prompt: "hi", max_tokens: 2 });
    req.write(body.slice(0, 10));
    setTimeout(() => { req.write(body.slice(10)); req.end(); }, 50);
  });
  assert.equal(r.status, 200, r.text.slice(0, 200));
  assert.equal(JSON.parse(r.text).usage.completion_tokens, 2);
});
await C.check("Expect: 100-continue (curl sends it for bodies over 1 KiB) -> 100 Continue, then the response", async () => {
  const body = JSON.stringify({ model, prompt: "a".repeat(2000).slice(0, 300), max_tokens: 2 });
  const r = await new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/v1/completions", agent: false,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), Expect: "100-continue" } }, (res) => {
      let t = "";
      res.on("data", (c) => (t += c));
      res.on("end", () => resolve({ status: res.statusCode, text: t, continued }));
    });
    let continued = false;
    const timer = setTimeout(() => { req.destroy(new Error("no 100 Continue within 1 s")); }, 1000);
    req.on("continue", () => { continued = true; clearTimeout(timer); req.end(body); });
    req.on("error", reject);
  });
  assert.ok(r.continued);
  assert.equal(r.status, 200, r.text.slice(0, 200));
});

// --- /tokenize and /detokenize ---------------------------------------------------------------
const HELLO = [BOS, ...textIds("hello")];
await C.check("/tokenize prompt -> {count, max_model_len, tokens} (BOS added by default)", async () => {
  const r = await post(port, "/tokenize", { model, prompt: "hello" });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.tokens, HELLO);
  assert.equal(r.json.count, 6);
  assert.equal(r.json.max_model_len, 512);
  assert.equal(r.json.token_strs ?? null, null);
});
await C.check("/tokenize add_special_tokens false, UTF-8 bytes -> byte-fallback ids", async () => {
  const r = await post(port, "/tokenize", { model, prompt: "h\u00e9 x", add_special_tokens: false });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.tokens, [textIds("h")[0], 0xc3 + 3, 0xa9 + 3, 0x20 + 3, textIds("x")[0]]);
  assert.equal(r.json.count, 5);
});
await C.check("/tokenize: special tokens written in the text are recognised", async () => {
  const r = await post(port, "/tokenize", { model, prompt: "<|im_start|>hi<|im_end|>" });
  assert.deepEqual(r.json.tokens, [BOS, IM_START, ...textIds("hi"), IM_END]);
});
await C.check("/tokenize return_token_strs -> vocabulary strings", async () => {
  const r = await post(port, "/tokenize", { model, prompt: "hi x", return_token_strs: true });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.token_strs, ["<s>", "h", "i", "<0x20>", "x"]);
});
const chatIds = (msgs, gen) => [
  ...msgs.flatMap((m) => [IM_START, ...textIds(`${m.role}\n${m.content}`), IM_END, ...textIds("\n")]),
  ...(gen ? [IM_START, ...textIds("assistant\n")] : []),
];
await C.check("/tokenize messages (ChatML, add_generation_prompt default true, no BOS)", async () => {
  const messages = [{ role: "system", content: "sys" }, { role: "user", content: "hi" }];
  const r = await post(port, "/tokenize", { model, messages });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.tokens, chatIds(messages, true));
  assert.equal(r.json.count, r.json.tokens.length);
  assert.equal(r.json.max_model_len, 512);
  const r2 = await post(port, "/tokenize", { model, messages, add_generation_prompt: false });
  assert.deepEqual(r2.json.tokens, chatIds(messages, false));
});
await C.check("/tokenize messages with continue_final_message: ends with the assistant text", async () => {
  const messages = [{ role: "user", content: "hi" }, { role: "assistant", content: "ab" }];
  const r = await post(port, "/tokenize", { model, messages, add_generation_prompt: false, continue_final_message: true });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.tokens, [...chatIds(messages.slice(0, 1), false), IM_START, ...textIds("assistant\nab")]);
});
await C.check("/tokenize unknown model -> 404 NotFoundError", async () => {
  const r = await post(port, "/tokenize", { model: "nope", prompt: "hi" });
  assertErrorShape(r, 404, "NotFoundError");
  assert.equal(r.json.error.message, "The model `nope` does not exist.");
});
await C.check("/detokenize -> {prompt}", async () => {
  let r = await post(port, "/detokenize", { model, tokens: textIds("hello") });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { prompt: "hello" });
  r = await post(port, "/detokenize", { model, tokens: textIds("h\u00e9 x") });
  assert.equal(r.json.prompt, "h\u00e9 x");
  r = await post(port, "/detokenize", { model, tokens: [IM_START, ...textIds("user")] });
  assert.equal(r.json.prompt, "<|im_start|>user", "special tokens kept (tokenizer.decode default)");
});

// --- the 400 battery ---------------------------------------------------------------------------
const C_ = "/v1/completions", CH = "/v1/chat/completions";
const P = (o) => ({ model, prompt: "hello", max_tokens: 4, ...o });
const M = (o) => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 4, ...o });
const long = "a".repeat(600);
const cases = [
  // [name, path, body (object | string | Buffer), headers, expected type]
  ["completions temperature -1", C_, P({ temperature: -1 }), {}, SERVE],
  ["chat temperature -1", CH, M({ temperature: -1 }), {}, SERVE],
  ["completions top_p 2", C_, P({ top_p: 2 }), {}, SERVE],
  ["chat top_p 0", CH, M({ top_p: 0 }), {}, SERVE],
  ["completions top_k -5", C_, P({ top_k: -5 }), {}, SERVE],
  ["completions min_p 1.5", C_, P({ min_p: 1.5 }), {}, SERVE],
  ["completions presence_penalty 3", C_, P({ presence_penalty: 3 }), {}, SERVE],
  ["completions frequency_penalty -3", C_, P({ frequency_penalty: -3 }), {}, SERVE],
  ["completions repetition_penalty 0", C_, P({ repetition_penalty: 0 }), {}, SERVE],
  ["completions n 0", C_, P({ n: 0 }), {}, SERVE],
  ["chat n 0", CH, M({ n: 0 }), {}, SERVE],
  ["completions max_tokens -1", C_, P({ max_tokens: -1 }), {}, SERVE],
  ["completions logprobs 21 (> --max-logprobs 20)", C_, P({ logprobs: 21 }), {}, SERVE],
  ["chat top_logprobs 21 (> --max-logprobs 20)", CH, M({ logprobs: true, top_logprobs: 21 }), {}, SERVE],
  ["completions prompt longer than max_model_len (601 tokens)", C_, P({ prompt: long }), {}, SERVE],
  ["completions token prompt longer than max_model_len", C_, P({ prompt: Array(600).fill(259) }), {}, SERVE],
  ["chat prompt longer than max_model_len", CH, M({ messages: [{ role: "user", content: long }] }), {}, SERVE],
  ["completions max_tokens + prompt > max_model_len", C_, P({ max_tokens: 510 }), {}, SERVE],
  ["chat max_tokens + prompt > max_model_len", CH, M({ max_tokens: 510 }), {}, SERVE],
  ["chat max_completion_tokens + prompt > max_model_len", CH, M({ max_tokens: undefined, max_completion_tokens: 510 }), {}, SERVE],
  ["completions allowed_token_ids out of vocabulary", C_, P({ allowed_token_ids: [100000] }), {}, SERVE],
  ["streaming request with temperature -1 -> JSON 400, not SSE", C_, P({ temperature: -1, stream: true }), {}, SERVE],
  ["completions suffix (not supported)", C_, P({ suffix: "x" }), {}, SERVE],
  ["completions empty prompt \"\" (CompletionRequest validator)", C_, P({ prompt: "" }), {}, PYD],
  ["completions token prompt out of vocabulary", C_, P({ prompt: [1, 99999] }), {}, SERVE],
  ["completions empty token list", C_, P({ prompt: [] }), {}, ANY],
  ["completions stream_options without stream", C_, P({ stream_options: { include_usage: true } }), {}, PYD],
  ["chat stream_options with stream false", CH, M({ stream: false, stream_options: { include_usage: true } }), {}, PYD],
  ["chat add_generation_prompt + continue_final_message", CH,
    M({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "a" }], add_generation_prompt: true, continue_final_message: true }), {}, PYD],
  ["chat top_logprobs without logprobs", CH, M({ top_logprobs: 3 }), {}, PYD],
  ["completions logprobs -2", C_, P({ logprobs: -2 }), {}, PYD],
  ["completions max_tokens \"ten\"", C_, P({ max_tokens: "ten" }), {}, PYD],
  ["completions max_tokens 1.5", C_, P({ max_tokens: 1.5 }), {}, PYD],
  ["completions temperature \"hot\"", C_, P({ temperature: "hot" }), {}, PYD],
  ["completions n \"two\"", C_, P({ n: "two" }), {}, PYD],
  ["completions prompt 5 (number)", C_, P({ prompt: 5 }), {}, PYD],
  ["completions prompt [[1, \"a\"]]", C_, P({ prompt: [[1, "a"]] }), {}, PYD],
  ["completions stop 5", C_, P({ stop: 5 }), {}, PYD],
  ["completions model 5", C_, P({ model: 5 }), {}, PYD],
  ["completions no prompt", C_, { model, max_tokens: 4 }, {}, PYD],
  ["chat messages \"hi\" (not a list)", CH, M({ messages: "hi" }), {}, PYD],
  ["chat no messages", CH, { model, max_tokens: 4 }, {}, PYD],
  ["chat message without role", CH, M({ messages: [{ content: "hi" }] }), {}, PYD],
  ["malformed JSON (completions)", C_, '{"model": "test-model", "prompt": "hi", ', {}, PYD],
  ["malformed JSON (chat)", CH, '{"model": "test-model", "messages": [}', {}, PYD],
  ["empty body", C_, "", {}, PYD],
  ["invalid UTF-8 in the body", C_, Buffer.concat([Buffer.from('{"model": "test-model", "prompt": "a'), Buffer.from([0xff, 0xfe]), Buffer.from('b"}')]), {}, PYD],
  ["Content-Type text/plain", C_, JSON.stringify(P({})), { "Content-Type": "text/plain" }, PYD],
  ["Content-Type application/x-www-form-urlencoded (chat)", CH, JSON.stringify(M({})), { "Content-Type": "application/x-www-form-urlencoded" }, PYD],
  ["/tokenize malformed JSON", "/tokenize", "{", {}, PYD],
  ["/tokenize prompt 5", "/tokenize", { model, prompt: 5 }, {}, PYD],
  ["/detokenize tokens \"x\"", "/detokenize", { model, tokens: "x" }, {}, PYD],
];
for (const [name, p, body, headers, type] of cases) {
  await C.check(`400: ${name}${type ? ` (type "${type}")` : ""}`, async () => {
    const r = await request(port, "POST", p, { body, headers });
    assertErrorShape(r, 400, type);
  });
}
await C.check("400: oversized body (33 MiB) -> 400 JSON error, no crash", async () => {
  const filler = "a".repeat(33 << 20);
  const body = Buffer.from(JSON.stringify({ model, prompt: filler, max_tokens: 1 }));
  const r = await new Promise((resolve, reject) => {
    let got = null;
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: C_, agent: false,
      headers: { "Content-Type": "application/json", "Content-Length": body.length } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json; try { json = JSON.parse(text); } catch { /* not JSON */ }
        got = { status: res.statusCode, headers: res.headers, text, json };
        resolve(got);
      });
    });
    req.on("error", (e) => { if (!got) reject(new Error(`no response (${e.code || e.message})`)); });
    req.setTimeout(60000, () => req.destroy(new Error("timeout")));
    req.end(body);
  });
  assertErrorShape(r, 400, ANY);
});
await C.check("the server survived the 400 battery: /health 200 and a completion works", async () => {
  assert.equal((await get(port, "/health")).status, 200);
  const r = await post(port, C_, P({ max_tokens: 3, ignore_eos: true }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.completion_tokens, 3);
});

// --- 404 / 405 -----------------------------------------------------------------------------------
for (const [p, body] of [[C_, P({ model: "nope" })], [CH, M({ model: "nope" })], [C_, P({ model: "nope", stream: true })]]) {
  await C.check(`404: unknown model on ${p}${body.stream ? " (stream)" : ""} -> NotFoundError "The model \`nope\` does not exist."`, async () => {
    const r = await post(port, p, body);
    assertErrorShape(r, 404, "NotFoundError");
    assert.equal(r.json.error.message, "The model `nope` does not exist.");
  });
}
await C.check("404: unknown path GET /v1/nope and POST /v2/completions", async () => {
  assert.equal((await get(port, "/v1/nope")).status, 404);
  assert.equal((await post(port, "/v2/completions", P({}))).status, 404);
});
await C.check("405: GET /v1/completions and GET /v1/chat/completions (FastAPI Method Not Allowed)", async () => {
  assert.equal((await get(port, C_)).status, 405);
  assert.equal((await get(port, CH)).status, 405);
});

// --- /metrics ---------------------------------------------------------------------------------------
const NAMES = [
  "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
  "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:time_to_first_token_seconds",
  "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds", "vllm:request_success_total",
  "vllm:num_preemptions_total", "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
];
const HIST = new Set(["vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds"]);
const L = { model_name: model };
await C.check("/metrics: Prometheus text, every vLLM metric name present with model_name=\"test-model\"", async () => {
  const r = await get(port, "/metrics");
  assert.equal(r.status, 200);
  assert.match(String(r.headers["content-type"]), /^text\/plain/);
  const s = (await fetchMetrics(port));
  const missing = NAMES.filter((n) => metricSum(s, HIST.has(n) ? `${n}_count` : n, L) === null);
  assert.deepEqual(missing, [], "missing metrics");
  for (const n of HIST) {
    assert.notEqual(metricSum(s, `${n}_sum`, L), null, `${n}_sum`);
    assert.notEqual(metricSum(s, `${n}_bucket`, { ...L, le: "+Inf" }), null, `${n}_bucket{le="+Inf"}`);
  }
  for (const fr of ["stop", "length", "abort"]) {
    assert.notEqual(metricSum(s, "vllm:request_success_total", { ...L, finished_reason: fr }), null, `finished_reason="${fr}"`);
  }
  assert.match(r.text, /^# TYPE vllm:num_requests_running gauge$/m);
  assert.match(r.text, /^# TYPE vllm:time_to_first_token_seconds histogram$/m);
});
await C.check("/metrics: numbers (values and le labels) printed as prometheus_client prints them (Python float repr: 10.0, not 1e+01)", async () => {
  const r = await get(port, "/metrics");
  const bad = [];
  // floatToGoString: repr(float) (integral values below 1e6 as "N.0"), Go-style exponent from 1e6 on
  const pyFloat = (tok) => {
    const v = Number(tok);
    return tok === "+Inf" || tok === "-Inf" || tok === "NaN" ||
      (Number.isInteger(v) && Math.abs(v) < 1e6 ? tok === `${v}.0` : /^-?\d+(\.\d+)?(e[+-]\d+)?$/.test(tok));
  };
  for (const line of r.text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const le = /le="([^"]*)"/.exec(line);
    if (!pyFloat(line.slice(line.lastIndexOf(" ") + 1)) || (le && !pyFloat(le[1]))) bad.push(line);
  }
  assert.deepEqual(bad.slice(0, 5), []);
});
await C.check("/metrics: vllm:cache_config_info (value 1) carries the KV cache's block size, dtype and block count", async () => {
  const r = await get(port, "/metrics");
  const line = r.text.split("\n").find((l) => l.startsWith("vllm:cache_config_info{"));
  assert.ok(line, "no vllm:cache_config_info sample");
  assert.match(line, /block_size="16"/);
  assert.match(line, /cache_dtype="auto"/);
  assert.match(line, /num_gpu_blocks="[1-9][0-9]*"/);
  assert.match(line, /\} 1\.0$/); // Python prints the gauge as 1.0, as vLLM does
});
await C.check("/metrics: idle gauges are 0 (running, waiting, kv_cache_usage_perc)", async () => {
  const s = await fetchMetrics(port);
  assert.equal(metricSum(s, "vllm:num_requests_running", L), 0);
  assert.equal(metricSum(s, "vllm:num_requests_waiting", L), 0);
  assert.equal(metricSum(s, "vllm:kv_cache_usage_perc", L), 0);
});
const finishedCount = (s) => metricSum(s, "vllm:request_success_total", L);
/** /metrics once the finished-request counters have grown by n (vLLM records a request's stats right
 *  around its final output, so allow them up to 2 s to catch up with the response). */
async function metricsAfter(a, n = 1) {
  const t = Date.now();
  for (;;) {
    const b = await fetchMetrics(port);
    if (finishedCount(b) - finishedCount(a) >= n || Date.now() - t > 2000) return b;
    await sleep(20);
  }
}
await C.check("/metrics: counters grow after a completion (tokens, success{length}, histograms, prefix-cache queries)", async () => {
  const a = await fetchMetrics(port);
  const r = await post(port, C_, { model, prompt: "metrics", max_tokens: 5, ignore_eos: true });
  assert.equal(r.status, 200, r.text);
  const b = await metricsAfter(a);
  const d = (name, labels = {}) => metricSum(b, name, { ...L, ...labels }) - metricSum(a, name, { ...L, ...labels });
  assert.equal(d("vllm:prompt_tokens_total"), 8, "prompt tokens (<s> + 7 letters)");
  assert.equal(d("vllm:generation_tokens_total"), 5);
  assert.equal(d("vllm:request_success_total", { finished_reason: "length" }), 1);
  assert.equal(d("vllm:request_success_total", { finished_reason: "stop" }), 0);
  assert.equal(d("vllm:time_to_first_token_seconds_count"), 1);
  assert.equal(d("vllm:e2e_request_latency_seconds_count"), 1);
  assert.equal(d("vllm:inter_token_latency_seconds_count"), 4, "one inter-token latency per decode step");
  assert.equal(d("vllm:prefix_cache_queries_total"), 8, "queries count prompt tokens");
  assert.ok(d("vllm:e2e_request_latency_seconds_sum") > 0);
});
await C.check("/metrics: finished_reason=\"stop\" counts a stop-string finish; prefix cache hits counted", async () => {
  const prompt = "z".repeat(40); // 41 tokens: 2 full blocks
  await post(port, C_, { model, prompt, max_tokens: 1 });
  const a = await fetchMetrics(port);
  const r = await post(port, C_, { model, prompt, max_tokens: 8, ignore_eos: true, allowed_token_ids: [259], stop: ["aa"] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].finish_reason, "stop");
  const b = await metricsAfter(a);
  const d = (name, labels = {}) => metricSum(b, name, { ...L, ...labels }) - metricSum(a, name, { ...L, ...labels });
  const fr = (f) => d("vllm:request_success_total", { finished_reason: f });
  assert.deepEqual({ stop: fr("stop"), length: fr("length"), abort: fr("abort") }, { stop: 1, length: 0, abort: 0 },
    "the response said finish_reason \"stop\"; vLLM counts the finish reason it reports");
  assert.equal(d("vllm:prefix_cache_hits_total"), 32, "two 16-token blocks hit");
  assert.equal(d("vllm:prefix_cache_queries_total"), 41);
});

await C.check("stop string completed by the last allowed token (max_tokens 2, stop \"aa\"): finish_reason stop / stop_reason \"aa\", counted as stop", async () => {
  const a = await fetchMetrics(port);
  const r = await post(port, C_, { model, prompt: "stop at the end", max_tokens: 2, ignore_eos: true, allowed_token_ids: [259], stop: ["aa"] });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.choices[0].text, r.json.choices[0].finish_reason, r.json.choices[0].stop_reason], ["", "stop", "aa"]);
  const b = await metricsAfter(a);
  const fr = (f) => metricSum(b, "vllm:request_success_total", { ...L, finished_reason: f }) - metricSum(a, "vllm:request_success_total", { ...L, finished_reason: f });
  assert.deepEqual({ stop: fr("stop"), length: fr("length") }, { stop: 1, length: 0 });
});

// --- client disconnect ----------------------------------------------------------------------------
async function waitIdle(ms) {
  const t0 = Date.now();
  let s;
  for (;;) {
    s = await fetchMetrics(port);
    if (metricSum(s, "vllm:num_requests_running", L) === 0 && metricSum(s, "vllm:num_requests_waiting", L) === 0) return { s, ms: Date.now() - t0 };
    if (Date.now() - t0 > ms) return { s, ms: -1 };
    await sleep(50);
  }
}
for (const [p, body] of [
  [C_, { model, prompt: "hi", max_tokens: 500, ignore_eos: true, stream: true }],
  [CH, { model, messages: [{ role: "user", content: "hi" }], max_tokens: 480, ignore_eos: true, stream: true }],
]) {
  await C.check(`client cuts a ${p} stream after 2 chunks -> num_requests_running 0 within 2 s, counted as abort`, async () => {
    // The premise is a cut that reaches the server before the request's last token: the tiny model can
    // generate all of max_tokens (the context's limit) while a loaded machine's client is still reading
    // its second chunk. Such a round proves nothing and is run again (at most three rounds).
    const abort = (m) => metricSum(m, "vllm:request_success_total", { ...L, finished_reason: "abort" });
    for (let round = 1; ; round++) {
      const a = await fetchMetrics(port);
      let n = 0;
      const r = await streamPost(port, p, body, { onEvent: () => (++n >= 2 ? "cut" : undefined) });
      assert.equal(r.status, 200);
      assert.ok(r.cut, `the stream ended before 2 chunks: ${r.text.slice(0, 300)}`);
      const { s: s0, ms } = await waitIdle(2000);
      assert.ok(ms >= 0, `num_requests_running ${metricSum(s0, "vllm:num_requests_running", L)} after 2 s`);
      let s = await metricsAfter(a);
      for (const t = Date.now(); abort(s) === abort(a) && Date.now() - t < 2000; s = await fetchMetrics(port)) await sleep(20);
      const gen = metricSum(s, "vllm:generation_tokens_total", L) - metricSum(a, "vllm:generation_tokens_total", L);
      if (gen >= body.max_tokens && abort(s) === abort(a) && round < 3) continue; // finished before the cut
      assert.equal(abort(s) - abort(a), 1, "request_success_total{finished_reason=\"abort\"} +1");
      assert.ok(gen < body.max_tokens, `generated ${gen} tokens: the request ran to the end`);
      assert.equal(metricSum(s, "vllm:kv_cache_usage_perc", L), 0, "KV blocks released");
      return;
    }
  });
}
await C.check("SSE framing: content-type text/event-stream, every event `data: ...\\n\\n`, ends with data: [DONE]", async () => {
  const r = await streamPost(port, C_, { model, prompt: "hi", max_tokens: 3, ignore_eos: true, stream: true, allowed_token_ids: LETTERS });
  assert.equal(r.status, 200);
  assert.match(String(r.headers["content-type"]), /^text\/event-stream/);
  assert.ok(r.done, "saw data: [DONE]");
  assert.match(r.text, /^(data: [^\n]+\n\n)+$/);
  assert.ok(r.text.endsWith("data: [DONE]\n\n"));
  // vLLM V1 coalesces the deltas of steps the handler has not sent yet, so 1..3 chunks carry the 3 tokens
  const chunks = r.events.filter((e) => e.json).map((e) => e.json);
  assert.ok(chunks.length >= 1 && chunks.length <= 3, `${chunks.length} chunks`);
  assert.match(chunks.map((c) => c.choices[0].text).join(""), /^[a-z]{3}$/);
  assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, "length");
});

// --- API keys -------------------------------------------------------------------------------------
await C.check("--api-key k1 --api-key k2: 401 {\"error\":\"Unauthorized\"} without/with a wrong key; both keys work; /health /metrics /version /tokenize open", async () => {
  const a = await startServer(["--api-key", "k1", "--api-key", "k2"], { name: "auth", env: { VLLM_API_KEY: "" } });
  try {
    const p = a.port;
    const unauth = async (r, what) => {
      assert.equal(r.status, 401, `${what}: HTTP ${r.status}`);
      assert.equal(r.text, '{"error":"Unauthorized"}', `${what}: body`);
    };
    await unauth(await get(p, "/v1/models"), "GET /v1/models without a key");
    await unauth(await post(p, C_, P({})), "completions without a key");
    await unauth(await post(p, CH, M({}), { headers: { Authorization: "Bearer wrong" } }), "chat with a wrong key");
    await unauth(await get(p, "/v1/models", { headers: { Authorization: "k1" } }), "key without Bearer");
    await unauth(await get(p, "/v1/models", { headers: { Authorization: "Bearer k1x" } }), "key with a suffix");
    for (const k of ["k1", "k2"]) {
      const h = { headers: { Authorization: `Bearer ${k}` } };
      assert.equal((await get(p, "/v1/models", h)).status, 200, `${k}: models`);
      const r = await post(p, C_, P({ max_tokens: 2 }), h);
      assert.equal(r.status, 200, `${k}: completions ${r.text}`);
      assert.equal((await post(p, CH, M({ max_tokens: 2 }), h)).status, 200, `${k}: chat`);
    }
    for (const path_ of ["/health", "/metrics", "/version", "/ping"]) assert.equal((await get(p, path_)).status, 200, path_);
    assert.equal((await post(p, "/tokenize", { model, prompt: "hi" })).status, 200, "/tokenize");
  } finally {
    await a.stop();
  }
});
await C.check("VLLM_API_KEY env: 401 without the key, 200 with it", async () => {
  const a = await startServer([], { name: "envkey", env: { VLLM_API_KEY: "envkey" } });
  try {
    assert.equal((await get(a.port, "/v1/models")).status, 401);
    assert.equal((await get(a.port, "/v1/models", { headers: { Authorization: "Bearer envkey" } })).status, 200);
    assert.equal((await get(a.port, "/health")).status, 200);
  } finally {
    await a.stop();
  }
});
await C.check("--served-model-name test-model alias-b: both listed, both accepted, responses name the first (vLLM)", async () => {
  const a = await startServer([], { name: "names", names: [model, "alias-b"] });
  try {
    const r = await get(a.port, "/v1/models");
    assert.deepEqual(r.json.data.map((m) => m.id), [model, "alias-b"]);
    const c = await post(a.port, C_, P({ model: "alias-b", max_tokens: 2 }));
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.model, model);
    const h = await post(a.port, CH, M({ model: "alias-b", max_tokens: 2 }));
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.model, model);
  } finally {
    await a.stop();
  }
});
await C.check("no \"model\" in the request -> the served model (vLLM: model is optional)", async () => {
  const r = await post(port, C_, { prompt: "hi", max_tokens: 2 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.model, model);
  const h = await post(port, CH, { messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
  assert.equal(h.status, 200, h.text);
  assert.equal(h.json.model, model);
});
await C.check("no --api-key: any or no Authorization header is accepted", async () => {
  assert.equal((await get(port, "/v1/models", { headers: { Authorization: "Bearer whatever" } })).status, 200);
});

await C.check("after everything: /health 200, gauges idle", async () => {
  assert.equal((await get(port, "/health")).status, 200);
  const { s, ms } = await waitIdle(2000);
  assert.ok(ms >= 0, "requests still running");
  assert.equal(metricSum(s, "vllm:kv_cache_usage_perc", L), 0);
});
const st = await srv.stop("SIGTERM");
C.expect("SIGTERM: server exits 0", st.code === 0, `exit ${JSON.stringify(st)}\n${srv.log().slice(-2000)}`);
C.finish();
