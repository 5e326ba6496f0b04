// `vllmc serve` through the official `openai` npm client: completions and chat, streaming and
// not, n > 1, seeds, logprobs, stop strings / stop token ids, usage, token-id and list prompts,
// echo, include_usage, prefix-cache hits in usage.prompt_tokens_details, models, 404s.
// Expected values are vLLM's (V1 OpenAI server, ~0.10/0.11), see the comments at each check.
//
// Usage (from the repository root): node tests/js/server_openai.mjs
// Env: see server_util.mjs.
import assert from "node:assert/strict";
import OpenAI from "openai";
import {
  Checks, startServerOrExit, get, post, getModelDir, MODEL_NAME, LETTERS, BOS, EOS, IM_START, IM_END, letterId, textIds, randomLetters,
} from "./server_util.mjs";

const C = new Checks("server_openai.mjs (openai npm client)");
const model = MODEL_NAME;
const srv = await startServerOrExit(C, ["--enable-prompt-tokens-details"], { name: "openai" });
C.ok(`server starts (port ${srv.port})`);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${srv.port}/v1`, apiKey: "sk-anything", maxRetries: 0, timeout: 120000 });
const now = () => Math.floor(Date.now() / 1000);
const GREEDY = { temperature: 0, ignore_eos: true };
const LET = { allowed_token_ids: LETTERS };

async function tokCount(body) {
  const r = await post(srv.port, "/tokenize", { model, ...body });
  assert.equal(r.status, 200, `/tokenize: ${r.status} ${r.text}`);
  return r.json.count;
}
const complete = (body) => client.completions.create({ model, ...body });
const chat = (body) => client.chat.completions.create({ model, ...body });
const user = (content) => [{ role: "user", content }];
async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}
function assertCreated(t) {
  assert.ok(Number.isInteger(t) && Math.abs(t - now()) < 120, `created ${t} is not unix seconds near ${now()}`);
}
const approx = (a, b, eps = 1e-4) => Math.abs(a - b) <= eps * Math.max(1, Math.abs(a), Math.abs(b));

// --- models -----------------------------------------------------------------------------
await C.check("models.list lists the served name (vLLM ModelCard: object model, owned_by vllm, root, max_model_len)", async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, [model]);
  const m = page.data[0];
  assert.equal(m.object, "model");
  assert.equal(m.owned_by, "vllm");
  assert.equal(m.root, getModelDir());
  assert.equal(m.max_model_len, 512);
  assertCreated(m.created);
});
await C.check("models.retrieve of an unknown id throws NotFoundError (404)", async () => {
  await assert.rejects(client.models.retrieve("no-such-model"), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});
for (const [what, fn] of [
  ["completions", () => complete({ model: "no-such-model", prompt: "hi", max_tokens: 2 })],
  ["chat", () => chat({ model: "no-such-model", messages: user("hi"), max_tokens: 2 })],
  ["completions (stream)", () => complete({ model: "no-such-model", prompt: "hi", max_tokens: 2, stream: true })],
]) {
  await C.check(`${what}: unknown model -> NotFoundError, "The model \`no-such-model\` does not exist."`, async () => {
    await assert.rejects(fn(), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, `got ${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 404);
      assert.equal(e.error?.message, "The model `no-such-model` does not exist.");
      assert.equal(e.error?.type, "NotFoundError");
      assert.equal(e.error?.code, 404);
      return true;
    });
  });
}

// --- completions: shape and usage ---------------------------------------------------------
let helloGreedy8;
await C.check("completion: shape (cmpl- id, text_completion, created, model, choice fields) and usage", async () => {
  const n = await tokCount({ prompt: "hello" });
  assert.equal(n, 6, "/tokenize 'hello' = <s> h e l l o");
  const r = await complete({ prompt: "hello", max_tokens: 8, ...GREEDY });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, "text_completion");
  assertCreated(r.created);
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(typeof c.text, "string");
  assert.equal(c.finish_reason, "length");
  assert.equal(c.stop_reason, null);
  assert.equal(c.logprobs, null);
  assert.equal(r.usage.prompt_tokens, n, "usage.prompt_tokens == /tokenize count");
  assert.equal(r.usage.completion_tokens, 8, "completion_tokens == max_tokens with ignore_eos");
  assert.equal(r.usage.total_tokens, n + 8);
  // vLLM: prompt_tokens_details is set only when num_cached_tokens > 0 (6 tokens: no full block).
  assert.equal(r.usage.prompt_tokens_details ?? null, null);
  helloGreedy8 = c.text;
});
await C.check("completion: greedy output is deterministic", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 8, ...GREEDY });
  assert.equal(r.choices[0].text, helloGreedy8);
});
await C.check("completion: default max_tokens is 16", async () => {
  const r = await complete({ prompt: "hello", ...GREEDY });
  assert.equal(r.usage.completion_tokens, 16);
  assert.equal(r.choices[0].finish_reason, "length");
});
await C.check("completion: allowed_token_ids letters -> one letter per token", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 12, ...GREEDY, ...LET });
  assert.match(r.choices[0].text, /^[a-z]{12}$/);
});

// --- chat: shape and usage ------------------------------------------------------------------
await C.check("chat: shape (chatcmpl- id, chat.completion, message) and usage == /tokenize(messages)", async () => {
  const n = await tokCount({ messages: user("hi") });
  const want = [IM_START, ...textIds("user\nhi"), IM_END, ...textIds("\n"), IM_START, ...textIds("assistant\n")].length;
  assert.equal(n, want, "/tokenize messages count (ChatML, add_generation_prompt)");
  const r = await chat({ messages: user("hi"), max_tokens: 8, ...GREEDY });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, "chat.completion");
  assertCreated(r.created);
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, "assistant");
  assert.equal(typeof c.message.content, "string");
  assert.equal(c.finish_reason, "length");
  assert.equal(c.stop_reason, null);
  assert.equal(c.logprobs ?? null, null);
  assert.equal(r.usage.prompt_tokens, n);
  assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, n + 8);
});
await C.check("chat: default max_tokens is the rest of the context (512 - prompt)", async () => {
  const r = await chat({ messages: user("hi"), ...GREEDY, ...LET });
  assert.equal(r.usage.completion_tokens, 512 - r.usage.prompt_tokens);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.choices[0].message.content.length, r.usage.completion_tokens);
});
await C.check("chat: system + user + assistant history accepted, usage == /tokenize", async () => {
  const messages = [{ role: "system", content: "be brief" }, { role: "user", content: "hi" },
    { role: "assistant", content: "yo" }, { role: "user", content: "more" }];
  const n = await tokCount({ messages });
  const r = await chat({ messages, max_tokens: 3, ...GREEDY });
  assert.equal(r.usage.prompt_tokens, n);
});

// --- streaming ---------------------------------------------------------------------------------
await C.check("completion stream: text concatenation == non-streaming text; chunks; include_usage chunk", async () => {
  const body = { prompt: "stream me", max_tokens: 24, ...GREEDY };
  const full = await complete(body);
  const chunks = await collect(await complete({ ...body, stream: true, stream_options: { include_usage: true } }));
  assert.ok(chunks.length >= 2, `${chunks.length} chunks`);
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1, "one id for all chunks");
  assert.match([...ids][0], /^cmpl-/);
  for (const c of chunks) { assert.equal(c.object, "text_completion"); assert.equal(c.model, model); assertCreated(c.created); }
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, [], "the usage chunk has choices: []");
  assert.deepEqual([last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens],
    [full.usage.prompt_tokens, 24, full.usage.prompt_tokens + 24]);
  const body_ = chunks.slice(0, -1);
  for (const c of body_) assert.equal(c.choices.length, 1);
  const text = body_.map((c) => c.choices[0].text).join("");
  assert.equal(text, full.choices[0].text);
  const fin = body_.map((c) => c.choices[0].finish_reason);
  assert.deepEqual(fin.filter((f) => f !== null), ["length"], "one finish_reason");
  assert.equal(fin[fin.length - 1], "length", "finish_reason on the last chunk");
});
await C.check("completion stream without stream_options: no usage chunk, ends with finish_reason", async () => {
  const chunks = await collect(await complete({ prompt: "stream me", max_tokens: 5, ...GREEDY, stream: true }));
  assert.ok(chunks.every((c) => c.choices.length === 1), "every chunk has one choice");
  assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, "length");
});
await C.check("chat stream: role chunk first, content concatenation == non-streaming, finish on the last, usage chunk", async () => {
  const body = { messages: user("stream me"), max_tokens: 24, ...GREEDY };
  const full = await chat(body);
  const chunks = await collect(await chat({ ...body, stream: true, stream_options: { include_usage: true } }));
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1);
  assert.match([...ids][0], /^chatcmpl-/);
  for (const c of chunks) { assert.equal(c.object, "chat.completion.chunk"); assert.equal(c.model, model); }
  const first = chunks[0].choices[0];
  assert.equal(first.index, 0);
  assert.deepEqual({ role: first.delta.role, content: first.delta.content }, { role: "assistant", content: "" });
  assert.equal(first.finish_reason ?? null, null);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 24);
  assert.equal(last.usage.prompt_tokens, full.usage.prompt_tokens);
  const mid = chunks.slice(1, -1);
  assert.ok(mid.every((c) => c.choices.length === 1 && c.choices[0].delta.role == null), "no role after the first chunk");
  assert.equal(mid.map((c) => c.choices[0].delta.content ?? "").join(""), full.choices[0].message.content);
  const fin = mid.map((c) => c.choices[0].finish_reason ?? null);
  assert.deepEqual(fin.filter((f) => f !== null), ["length"]);
  assert.equal(fin[fin.length - 1], "length");
});

// --- n > 1 and seeds -------------------------------------------------------------------------------
const SAMPLE = { temperature: 1, ignore_eos: true, ...LET };
await C.check("seed: same seed => same output (temperature 1), different seed => different", async () => {
  const a = await complete({ prompt: "seed", max_tokens: 16, seed: 42, ...SAMPLE });
  const b = await complete({ prompt: "seed", max_tokens: 16, seed: 42, ...SAMPLE });
  const c = await complete({ prompt: "seed", max_tokens: 16, seed: 43, ...SAMPLE });
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
  const x = await chat({ messages: user("seed"), max_tokens: 16, seed: 42, ...SAMPLE });
  const y = await chat({ messages: user("seed"), max_tokens: 16, seed: 42, ...SAMPLE });
  assert.equal(x.choices[0].message.content, y.choices[0].message.content);
});
await C.check("n=3 seeded completion: indices 0..2, choices differ, repeatable, choice i == n=1 with seed+i (vLLM V1)", async () => {
  const body = { prompt: "many", max_tokens: 12, n: 3, seed: 1234, ...SAMPLE };
  const r1 = await complete(body);
  const r2 = await complete(body);
  assert.deepEqual(r1.choices.map((c) => c.index), [0, 1, 2]);
  const t1 = r1.choices.map((c) => c.text);
  assert.deepEqual(r2.choices.map((c) => c.text), t1, "same seed, same texts");
  assert.ok(new Set(t1).size >= 2, `choices should differ: ${JSON.stringify(t1)}`);
  for (const t of t1) assert.match(t, /^[a-z]{12}$/);
  assert.equal(r1.usage.completion_tokens, 36);
  assert.equal(r1.usage.prompt_tokens, 5, "prompt counted once");
  for (let i = 0; i < 3; i++) {
    const s = await complete({ ...body, n: 1, seed: 1234 + i });
    assert.equal(s.choices[0].text, t1[i], `choice ${i} vs seed ${1234 + i}`);
  }
});
await C.check("n=2 seeded chat: two choices, differ, repeatable", async () => {
  const body = { messages: user("many"), max_tokens: 12, n: 2, seed: 99, ...SAMPLE };
  const r1 = await chat(body);
  const r2 = await chat(body);
  assert.deepEqual(r1.choices.map((c) => c.index), [0, 1]);
  const t1 = r1.choices.map((c) => c.message.content);
  assert.deepEqual(r2.choices.map((c) => c.message.content), t1);
  assert.notEqual(t1[0], t1[1]);
  assert.equal(r1.usage.completion_tokens, 24);
});
await C.check("n=2 chat stream: a role chunk and one finish_reason per choice, texts == non-streaming", async () => {
  const body = { messages: user("many"), max_tokens: 10, n: 2, seed: 5, ...SAMPLE };
  const full = await chat(body);
  const chunks = await collect(await chat({ ...body, stream: true }));
  for (const idx of [0, 1]) {
    const mine = chunks.flatMap((c) => c.choices.filter((ch) => ch.index === idx));
    assert.equal(mine[0].delta.role, "assistant", `choice ${idx}: first delta has the role`);
    assert.equal(mine[0].delta.content, "");
    assert.equal(mine.filter((ch) => ch.finish_reason).length, 1);
    assert.equal(mine[mine.length - 1].finish_reason, "length");
    assert.equal(mine.map((ch) => ch.delta.content ?? "").join(""), full.choices[idx].message.content);
  }
});

await C.check("n=2 completion stream: chunks tagged with index 0/1, texts == non-streaming, usage sums both", async () => {
  const body = { prompt: "many", max_tokens: 8, n: 2, seed: 11, ...SAMPLE };
  const full = await complete(body);
  const chunks = await collect(await complete({ ...body, stream: true, stream_options: { include_usage: true } }));
  for (const idx of [0, 1]) {
    const mine = chunks.flatMap((c) => c.choices.filter((ch) => ch.index === idx));
    assert.equal(mine.map((ch) => ch.text).join(""), full.choices[idx].text, `choice ${idx}`);
    assert.deepEqual(mine.map((ch) => ch.finish_reason).filter((f) => f), ["length"]);
  }
  assert.equal(chunks[chunks.length - 1].usage.completion_tokens, 16);
});

// --- logprobs --------------------------------------------------------------------------------------
await C.check("completion logprobs=5 (greedy): text_offset/token_logprobs/tokens/top_logprobs shapes and values", async () => {
  const k = 5;
  const r = await complete({ prompt: "hello", max_tokens: 8, logprobs: k, ...GREEDY });
  const lp = r.choices[0].logprobs;
  assert.ok(lp, "logprobs present");
  for (const f of ["text_offset", "token_logprobs", "tokens", "top_logprobs"]) assert.equal(lp[f].length, 8, f);
  let off = 0;
  for (let i = 0; i < 8; i++) {
    const tok = lp.tokens[i], l = lp.token_logprobs[i], top = lp.top_logprobs[i];
    assert.equal(typeof tok, "string");
    assert.ok(typeof l === "number" && l <= 0 && l >= -9999, `token_logprob ${l}`);
    assert.equal(lp.text_offset[i], off, `text_offset[${i}]`);
    off += tok.length;
    const vals = Object.values(top);
    // vLLM: a dict keyed by decoded token strings, the sampled token plus the top k; tokens that decode
    // to the same string (byte tokens -> U+FFFD, <0x61> and 'a') share a key, so 1..k entries here.
    assert.ok(vals.length >= 1 && vals.length <= k, `top_logprobs[${i}] has ${vals.length} entries`);
    assert.ok(tok in top, `sampled token ${JSON.stringify(tok)} is a key of top_logprobs[${i}]`);
    for (const v of vals) assert.ok(v <= 0 && v <= l + 1e-4, `top value ${v} vs sampled ${l} (greedy: sampled is the max)`);
    if (vals.length === k) assert.ok(approx(Math.max(...vals), l), `max top ${Math.max(...vals)} == sampled ${l}`);
  }
  // Tokens join to the text unless some decode differently alone (byte tokens -> U+FFFD, specials).
  if (lp.tokens.every((t) => /^[\x20-\x7e\n]$/.test(t))) assert.equal(lp.tokens.join(""), r.choices[0].text);
  assert.equal(r.choices[0].text, helloGreedy8, "logprobs do not change the greedy text");
});
await C.check("completion logprobs=3 with letters: tokens join to the text, offsets are cumulative", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 6, logprobs: 3, ...GREEDY, ...LET });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.join(""), r.choices[0].text);
  assert.deepEqual(lp.text_offset, [0, 1, 2, 3, 4, 5]);
  for (let i = 0; i < 6; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    assert.ok(lp.tokens[i] in lp.top_logprobs[i]);
    assert.ok(Object.keys(lp.top_logprobs[i]).length <= 4, "at most k + 1 entries");
  }
});
await C.check("completion logprobs=2, seeded temperature 1: sampled logprob <= 0 and in the dict", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 8, logprobs: 2, seed: 3, temperature: 1, ignore_eos: true });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 8);
  for (let i = 0; i < 8; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    assert.ok(Object.keys(lp.top_logprobs[i]).length <= 3);
    assert.ok(lp.tokens[i] in lp.top_logprobs[i]);
  }
});
await C.check("chat logprobs + top_logprobs=5 (greedy): content entries {token, logprob, bytes, top_logprobs[5] sorted}", async () => {
  const k = 5;
  const r = await chat({ messages: user("hello"), max_tokens: 8, logprobs: true, top_logprobs: k, ...GREEDY });
  const content = r.choices[0].logprobs?.content;
  assert.ok(Array.isArray(content), "logprobs.content is a list");
  assert.equal(content.length, 8);
  for (const [i, e] of content.entries()) {
    assert.equal(typeof e.token, "string");
    assert.ok(e.logprob <= 0 && e.logprob >= -9999, `logprob ${e.logprob}`);
    assert.deepEqual(e.bytes, [...Buffer.from(e.token, "utf8")], "bytes == UTF-8 of token");
    assert.equal(e.top_logprobs.length, k, `top_logprobs[${i}] has k entries`);
    for (let j = 1; j < k; j++) assert.ok(e.top_logprobs[j - 1].logprob >= e.top_logprobs[j].logprob, "sorted descending");
    for (const t of e.top_logprobs) {
      assert.equal(typeof t.token, "string");
      assert.ok(t.logprob <= 0);
      assert.deepEqual(t.bytes, [...Buffer.from(t.token, "utf8")]);
    }
    assert.ok(approx(e.top_logprobs[0].logprob, e.logprob), "greedy: sampled == top-1");
    assert.equal(e.top_logprobs[0].token, e.token);
  }
});
await C.check("chat logprobs: true without top_logprobs -> empty top_logprobs lists", async () => {
  const r = await chat({ messages: user("hello"), max_tokens: 3, logprobs: true, ...GREEDY });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 3);
  for (const e of content) { assert.deepEqual(e.top_logprobs, []); assert.ok(e.logprob <= 0); }
});
await C.check("chat stream logprobs: per-chunk content logprobs, as many as tokens", async () => {
  const chunks = await collect(await chat({ messages: user("hello"), max_tokens: 6, logprobs: true, top_logprobs: 2, ...GREEDY, stream: true }));
  const entries = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.logprobs?.content ?? []));
  assert.equal(entries.length, 6);
  for (const e of entries) { assert.equal(e.top_logprobs.length, 2); assert.ok(e.logprob <= 0); }
});

// --- stop strings and stop token ids -----------------------------------------------------------------
let T; // 16 greedy letters after "stopper"
await C.check("stop string (completions): text cut before it, finish_reason stop, stop_reason the string", async () => {
  const base = { prompt: "stopper", max_tokens: 16, ...GREEDY, ...LET };
  T = (await complete(base)).choices[0].text;
  assert.match(T, /^[a-z]{16}$/);
  const s = T.slice(6, 8), idx = T.indexOf(s);
  const r = await complete({ ...base, stop: [s] });
  const c = r.choices[0];
  assert.equal(c.text, T.slice(0, idx), `stop ${JSON.stringify(s)} in ${T}`);
  assert.equal(c.finish_reason, "stop");
  assert.equal(c.stop_reason, s);
  assert.equal(r.usage.completion_tokens, idx + 2, "tokens up to the end of the stop string are counted");
  const r2 = await complete({ ...base, stop: s });
  assert.equal(r2.choices[0].text, T.slice(0, idx), "stop as a plain string");
});
await C.check("stop string + include_stop_str_in_output keeps it", async () => {
  const s = T.slice(6, 8), idx = T.indexOf(s);
  const r = await complete({ prompt: "stopper", max_tokens: 16, ...GREEDY, ...LET, stop: [s], include_stop_str_in_output: true });
  assert.equal(r.choices[0].text, T.slice(0, idx + 2));
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].stop_reason, s);
});
await C.check("stop string, streaming: concatenation == cut text, last chunk finish_reason stop / stop_reason", async () => {
  const s = T.slice(6, 8), idx = T.indexOf(s);
  const chunks = await collect(await complete({ prompt: "stopper", max_tokens: 16, ...GREEDY, ...LET, stop: [s], stream: true }));
  assert.equal(chunks.map((c) => c.choices[0].text).join(""), T.slice(0, idx));
  const last = chunks[chunks.length - 1].choices[0];
  assert.equal(last.finish_reason, "stop");
  assert.equal(last.stop_reason, s);
});
await C.check("stop string never matching: finish_reason length, stop_reason null", async () => {
  const r = await complete({ prompt: "stopper", max_tokens: 16, ...GREEDY, ...LET, stop: ["XYZ"] });
  assert.equal(r.choices[0].text, T);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.choices[0].stop_reason, null);
});
await C.check("stop_token_ids: text cut before the token, stop_reason is the id", async () => {
  const ch = T[5], idx = T.indexOf(ch), id = letterId(ch);
  const r = await complete({ prompt: "stopper", max_tokens: 16, ...GREEDY, ...LET, stop_token_ids: [id] });
  const c = r.choices[0];
  assert.equal(c.text, T.slice(0, idx));
  assert.equal(c.finish_reason, "stop");
  assert.equal(c.stop_reason, id);
  assert.equal(r.usage.completion_tokens, idx + 1, "the stop token is counted");
});
await C.check("chat stop string and stop_token_ids", async () => {
  const base = { messages: user("stopper"), max_tokens: 16, ...GREEDY, ...LET };
  const U = (await chat(base)).choices[0].message.content;
  assert.match(U, /^[a-z]{16}$/);
  const s = U.slice(5, 7), idx = U.indexOf(s);
  const r = await chat({ ...base, stop: [s] });
  assert.equal(r.choices[0].message.content, U.slice(0, idx));
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].stop_reason, s);
  const ch = U[9], j = U.indexOf(ch);
  const r2 = await chat({ ...base, stop_token_ids: [letterId(ch)] });
  assert.equal(r2.choices[0].message.content, U.slice(0, j));
  assert.equal(r2.choices[0].finish_reason, "stop");
  assert.equal(r2.choices[0].stop_reason, letterId(ch));
});

// --- prompt forms, echo --------------------------------------------------------------------------------
await C.check("token-id prompt == the same text prompt (same text, prompt_tokens)", async () => {
  const ids = [BOS, ...textIds("hello")];
  const r = await complete({ prompt: ids, max_tokens: 8, ...GREEDY });
  assert.equal(r.usage.prompt_tokens, 6);
  assert.equal(r.choices[0].text, helloGreedy8);
});
await C.check("list of strings: one choice per prompt in order, usage summed", async () => {
  const one = await complete({ prompt: "world", max_tokens: 8, ...GREEDY });
  const r = await complete({ prompt: ["hello", "world"], max_tokens: 8, ...GREEDY });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.deepEqual(r.choices.map((c) => c.text), [helloGreedy8, one.choices[0].text]);
  assert.equal(r.usage.prompt_tokens, 12);
  assert.equal(r.usage.completion_tokens, 16);
  assert.equal(r.usage.total_tokens, 28);
});
await C.check("list of token-id lists: one choice per prompt in order", async () => {
  const r = await complete({ prompt: [[BOS, ...textIds("hello")], [BOS, ...textIds("ab")]], max_tokens: 8, ...GREEDY });
  const ab = await complete({ prompt: "ab", max_tokens: 8, ...GREEDY });
  assert.deepEqual(r.choices.map((c) => c.text), [helloGreedy8, ab.choices[0].text]);
  assert.equal(r.usage.prompt_tokens, 6 + 3);
});
await C.check("2 prompts x n=2 (seeded): choice index = prompt_index * n + i, texts match per-prompt requests", async () => {
  const body = { max_tokens: 8, n: 2, seed: 7, ...SAMPLE };
  const r = await complete({ ...body, prompt: [[BOS, ...textIds("hello")], [BOS, ...textIds("ab")]] });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
  const a = await complete({ ...body, prompt: "hello" });
  const b = await complete({ ...body, prompt: "ab" });
  assert.deepEqual(r.choices.map((c) => c.text), [...a.choices.map((c) => c.text), ...b.choices.map((c) => c.text)]);
  assert.equal(r.usage.completion_tokens, 32);
});
await C.check("echo: text = prompt + completion", async () => {
  const plain = await complete({ prompt: "hello", max_tokens: 6, ...GREEDY, ...LET });
  const r = await complete({ prompt: "hello", max_tokens: 6, echo: true, ...GREEDY, ...LET });
  assert.equal(r.choices[0].text, "hello" + plain.choices[0].text);
  assert.equal(r.usage.prompt_tokens, 6);
  assert.equal(r.usage.completion_tokens, 6);
});
await C.check("echo, streaming: concatenation = prompt + completion", async () => {
  const plain = await complete({ prompt: "hello", max_tokens: 6, ...GREEDY, ...LET });
  const chunks = await collect(await complete({ prompt: "hello", max_tokens: 6, echo: true, ...GREEDY, ...LET, stream: true }));
  assert.equal(chunks.map((c) => c.choices[0].text).join(""), "hello" + plain.choices[0].text);
});

// --- prefix caching -----------------------------------------------------------------------------------
await C.check("prefix cache: the same 100-token prompt twice -> cached_tokens (whole 16-token blocks) >= 96", async () => {
  const prompt = randomLetters(99, 2024); // + <s> = 100 tokens
  assert.equal(await tokCount({ prompt }), 100);
  const r1 = await complete({ prompt, max_tokens: 2, ...GREEDY });
  assert.equal(r1.usage.prompt_tokens, 100);
  // vLLM sets prompt_tokens_details only when num_cached_tokens > 0
  assert.equal(r1.usage.prompt_tokens_details?.cached_tokens ?? 0, 0, `first request: ${JSON.stringify(r1.usage)}`);
  const r2 = await complete({ prompt, max_tokens: 2, ...GREEDY });
  const ct = r2.usage.prompt_tokens_details?.cached_tokens;
  assert.ok(Number.isInteger(ct) && ct >= 96 && ct < 100 && ct % 16 === 0, `second request: ${JSON.stringify(r2.usage)}`);
  assert.deepEqual(Object.keys(r2.usage.prompt_tokens_details), ["cached_tokens"]);
  assert.equal(r2.choices[0].text, r1.choices[0].text, "cache hits do not change greedy output");
  const chunks = await collect(await complete({ prompt, max_tokens: 2, ...GREEDY, stream: true, stream_options: { include_usage: true } }));
  const u = chunks[chunks.length - 1].usage;
  assert.ok(u.prompt_tokens_details?.cached_tokens >= 96, `streamed usage: ${JSON.stringify(u)}`);
});
await C.check("prefix cache (chat): a long conversation twice -> cached_tokens >= 96", async () => {
  const messages = user(randomLetters(120, 77));
  await chat({ messages, max_tokens: 2, ...GREEDY });
  const r = await chat({ messages, max_tokens: 2, ...GREEDY });
  const ct = r.usage.prompt_tokens_details?.cached_tokens;
  assert.ok(Number.isInteger(ct) && ct >= 96 && ct % 16 === 0 && ct < r.usage.prompt_tokens, JSON.stringify(r.usage));
});

// --- EOS, special tokens and other vLLM sampling extensions ------------------------------------------
await C.check("EOS: finish_reason stop, stop_reason null, EOS text not in the output, counted as a token", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 8, temperature: 0, allowed_token_ids: [EOS] });
  const c = r.choices[0];
  assert.deepEqual([c.text, c.finish_reason, c.stop_reason, r.usage.completion_tokens], ["", "stop", null, 1]);
  const h = await chat({ messages: user("hello"), max_tokens: 8, temperature: 0, allowed_token_ids: [EOS] });
  assert.deepEqual([h.choices[0].message.content, h.choices[0].finish_reason, h.choices[0].stop_reason], ["", "stop", null]);
});
await C.check("EOS with ignore_eos: generation goes on to max_tokens, EOS skipped in the text", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 4, temperature: 0, ignore_eos: true, allowed_token_ids: [EOS] });
  assert.deepEqual([r.choices[0].text, r.choices[0].finish_reason, r.usage.completion_tokens], ["", "length", 4]);
});
await C.check("special tokens: skipped in the text by default, kept with skip_special_tokens false", async () => {
  const body = { prompt: "hello", max_tokens: 2, ...GREEDY, allowed_token_ids: [IM_START] };
  assert.equal((await complete(body)).choices[0].text, "");
  assert.equal((await complete({ ...body, skip_special_tokens: false })).choices[0].text, "<|im_start|><|im_start|>");
});
await C.check("logit_bias {\"259\": 100} makes greedy output all 'a'", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 5, ...GREEDY, logit_bias: { "259": 100 } });
  assert.equal(r.choices[0].text, "aaaaa");
  const h = await chat({ messages: user("hello"), max_tokens: 5, ...GREEDY, logit_bias: { "260": 100 } });
  assert.equal(h.choices[0].message.content, "bbbbb");
});
await C.check("completion logprobs=0: one top_logprobs entry per token, the sampled one", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 4, logprobs: 0, ...GREEDY, ...LET });
  const lp = r.choices[0].logprobs;
  for (let i = 0; i < 4; i++) assert.deepEqual(lp.top_logprobs[i], { [lp.tokens[i]]: lp.token_logprobs[i] });
});
await C.check("completion stream logprobs: per-chunk arrays, text_offset continues across chunks", async () => {
  const chunks = await collect(await complete({ prompt: "hello", max_tokens: 6, logprobs: 2, ...GREEDY, ...LET, stream: true }));
  const tokens = [], offsets = [];
  for (const c of chunks) {
    const lp = c.choices[0].logprobs;
    assert.equal(lp.tokens.join(""), c.choices[0].text, "a chunk's tokens join to its text");
    assert.equal(lp.token_logprobs.length, lp.tokens.length);
    tokens.push(...lp.tokens);
    offsets.push(...lp.text_offset);
  }
  assert.equal(tokens.length, 6);
  assert.deepEqual(offsets, [0, 1, 2, 3, 4, 5]);
});
await C.check("return_tokens_as_token_ids: logprob tokens are \"token_id:N\"", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 3, logprobs: 1, return_tokens_as_token_ids: true, ...GREEDY, ...LET });
  const { tokens } = r.choices[0].logprobs;
  assert.deepEqual(tokens, [...r.choices[0].text].map((ch) => `token_id:${letterId(ch)}`));
});
await C.check("prompt_logprobs=1: a list as long as the prompt, null first, then {id: {logprob, rank, decoded_token}}", async () => {
  const r = await complete({ prompt: "hello", max_tokens: 1, prompt_logprobs: 1, ...GREEDY });
  const pl = r.choices[0].prompt_logprobs;
  assert.ok(Array.isArray(pl), JSON.stringify(r.choices[0]).slice(0, 300));
  assert.equal(pl.length, 6);
  assert.equal(pl[0], null);
  const ids = [BOS, ...textIds("hello")];
  for (let i = 1; i < 6; i++) {
    const e = pl[i][String(ids[i])];
    assert.ok(e, `prompt_logprobs[${i}] lacks the prompt token ${ids[i]}: ${JSON.stringify(pl[i])}`);
    assert.ok(e.logprob <= 0 && Number.isInteger(e.rank) && e.rank >= 1);
    assert.equal(e.decoded_token, "hello"[i - 1]);
    assert.ok(Object.keys(pl[i]).length <= 2, "prompt token + top 1");
  }
});
await C.check("truncate_prompt_tokens=100 keeps the last 100 prompt tokens", async () => {
  const r = await complete({ prompt: randomLetters(300, 5), max_tokens: 2, truncate_prompt_tokens: 100, ...GREEDY });
  assert.equal(r.usage.prompt_tokens, 100);
});
await C.check("chat max_completion_tokens limits the output", async () => {
  const r = await chat({ messages: user("hello"), max_completion_tokens: 5, ...GREEDY });
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(r.choices[0].finish_reason, "length");
});
await C.check("chat content as a list of text parts == the same text as a string", async () => {
  const a = await chat({ messages: [{ role: "user", content: [{ type: "text", text: "hello" }] }], max_tokens: 6, ...GREEDY });
  const b = await chat({ messages: user("hello"), max_tokens: 6, ...GREEDY });
  assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});
await C.check("chat continue_final_message: prompt ends inside the assistant turn, usage == /tokenize", async () => {
  const messages = [{ role: "user", content: "hi" }, { role: "assistant", content: "ab" }];
  const extra = { add_generation_prompt: false, continue_final_message: true };
  const n = await tokCount({ messages, ...extra });
  const r = await chat({ messages, max_tokens: 3, ...GREEDY, ...extra });
  assert.equal(r.usage.prompt_tokens, n);
});
await C.check("stream_options continuous_usage_stats: every chunk carries usage, completion_tokens grows to max_tokens", async () => {
  const chunks = await collect(await complete({ prompt: "hello", max_tokens: 5, ...GREEDY, ...LET, stream: true,
    stream_options: { include_usage: true, continuous_usage_stats: true } }));
  let prev = 0;
  for (const c of chunks) {
    assert.ok(c.usage, `chunk without usage: ${JSON.stringify(c)}`);
    assert.equal(c.usage.prompt_tokens, 6);
    assert.ok(c.usage.completion_tokens >= prev);
    prev = c.usage.completion_tokens;
  }
  assert.equal(prev, 5);
});

await C.check("server still healthy after the suite (GET /health 200)", async () => {
  const r = await get(srv.port, "/health");
  assert.equal(r.status, 200);
});
const st = await srv.stop("SIGTERM");
C.expect("SIGTERM: server exits 0", st.code === 0, `exit ${JSON.stringify(st)}\n${srv.log().slice(-2000)}`);
C.finish();
