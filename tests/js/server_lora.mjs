// LoRA adapters in `vllmc serve`, as vLLM serves them (serving_models.py): --enable-lora with
// --lora-modules in both forms (name=path and the JSON object with base_model_name), the adapters'
// cards in /v1/models, `model` naming an adapter (responses say its name) for completions and chat,
// streaming or not, n > 1, alone or in a mixed batch (same text either way); vLLM's 404 for an unknown
// model; with VLLM_ALLOW_RUNTIME_LORA_UPDATING, POST /v1/load_lora_adapter and /v1/unload_lora_adapter
// (plain-text success lines, vLLM's 400/404 errors) and unloading an adapter while a stream uses it (the
// stream ends normally, new requests get a 404); without the variable those routes are unknown paths;
// vllm:lora_requests_info in /metrics; start-up refusals (a bad adapter names itself and its file).
// Adapters: tests/fixtures/make_lora_adapter.sh on the chat model of make_chat_model.sh.
//
// Usage (from the repository root): node tests/js/server_lora.mjs
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import OpenAI from "openai";
import {
  Checks, startServerOrExit, get, post, streamPost, getModelDir, fetchMetrics, MODEL_NAME, LETTERS, ROOT, VLLMC,
} from "./server_util.mjs";

const C = new Checks("server_lora.mjs (LoRA adapters)");
const model = getModelDir();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vllmc-lora-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
function adapter(name, rank, modules, seed) {
  const dir = path.join(tmp, name);
  const r = spawnSync("bash", [path.join(ROOT, "tests/fixtures/make_lora_adapter.sh"), dir, model, String(rank), modules, String(seed)],
    { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`make_lora_adapter.sh ${name}: ${r.stderr}`);
  return dir;
}
const ALL = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj";
const A = adapter("a", 8, ALL, 1), B = adapter("b", 8, "q_proj,v_proj,down_proj", 2), CC = adapter("c", 8, ALL, 3);
const BIG = adapter("big", 32, "q_proj", 4);
const EMPTY = path.join(tmp, "empty");
fs.mkdirSync(EMPTY);

// ---- start-up: flags and a bad adapter (no server) ----
const serve = (args) => spawnSync(VLLMC, ["serve", model, "--port", "0", "--host", "127.0.0.1", ...args],
  { encoding: "utf8", timeout: 60000, env: { ...process.env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: "" } });
await C.check("start-up: a bad --lora-modules adapter stops the server (exit != 0), naming the adapter and the file", () => {
  const r = serve(["--enable-lora", "--lora-modules", `good=${A}`, `bad=${EMPTY}`]);
  assert.notEqual(r.status, 0, `exit ${r.status}`);
  assert.match(r.stderr, /'bad'/, r.stderr);
  assert.match(r.stderr, /adapter_config\.json/, r.stderr);
  assert.doesNotMatch(r.stderr, /listening on/);
});
await C.check("start-up: an adapter above --max-lora-rank stops it, naming the tensor's file and the flag", () => {
  const r = serve(["--enable-lora", "--lora-modules", `big=${BIG}`]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /'big'.*adapter_model\.safetensors.*rank 32.*--max-lora-rank 16/, r.stderr);
});
await C.check("start-up: --lora-modules without --enable-lora is vLLM's error (exit 2, before loading)", () => {
  const r = serve(["--lora-modules", `a=${A}`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /LoRA is not enabled\. Use --enable-lora to enable LoRA\./);
});
await C.check("start-up: bad LoRA flag values are refused with vLLM's wording", () => {
  const rank = serve(["--enable-lora", "--max-lora-rank", "12"]);
  assert.equal(rank.status, 2);
  assert.match(rank.stderr, /--max-lora-rank: invalid choice: '12' \(choose from 1, 8, 16, 32, 64, 128, 256, 320, 512\)/);
  const cpu = serve(["--enable-lora", "--max-loras", "4", "--max-cpu-loras", "2"]);
  assert.equal(cpu.status, 2);
  assert.match(cpu.stderr, /max_cpu_loras \(2\) must be >= max_loras \(4\)/);
  const zero = serve(["--enable-lora", "--max-loras", "0"]);
  assert.equal(zero.status, 2);
  assert.match(zero.stderr, /--max-loras/);
  const json = serve(["--enable-lora", "--lora-modules", `{"name": "x", "path": "${A}", "color": 1}`]);
  assert.equal(json.status, 2);
  assert.match(json.stderr, /Invalid fields for --lora-modules: .*'color'/);
  const bad = serve(["--enable-lora", "--lora-modules", "{not json"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Invalid JSON format for --lora-modules: \{not json/);
});

// ---- the server: a (name=path) and b (JSON form), two adapters per step, runtime updates on ----
const srv = await startServerOrExit(C, ["--enable-lora", "--max-loras", "2", "--lora-modules", `a=${A}`,
  JSON.stringify({ name: "b", path: B, base_model_name: MODEL_NAME })],
{ name: "lora", env: { VLLM_ALLOW_RUNTIME_LORA_UPDATING: "1" } });
C.ok(`server starts (port ${srv.port})`);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${srv.port}/v1`, apiKey: "sk-anything", maxRetries: 0, timeout: 60000 });
const GREEDY = { temperature: 0, ignore_eos: true, allowed_token_ids: LETTERS, max_tokens: 12 };
const complete = (m, prompt = "hello", extra = {}) =>
  client.completions.create({ model: m, prompt, ...GREEDY, ...extra });

await C.check("/v1/models: the base model, then a and b with root (the path as given) and parent (vLLM's ModelCard)", async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.deepEqual(ids, [MODEL_NAME, "a", "b"]);
  const [base, a, b] = list.data;
  assert.equal(base.parent, null);
  assert.equal(base.max_model_len, 512);
  for (const [card, root] of [[a, A], [b, B]]) {
    assert.equal(card.object, "model");
    assert.equal(card.owned_by, "vllm");
    assert.equal(card.root, root);
    assert.equal(card.parent, MODEL_NAME);
    assert.equal(card.max_model_len, null); // vLLM's adapter cards leave it unset
    assert.equal(card.permission[0].object, "model_permission");
  }
});

const alone = {};
await C.check("completions: greedy outputs of a, b and the base model all differ; each names its model", async () => {
  for (const m of [MODEL_NAME, "a", "b"]) {
    const r = await complete(m);
    assert.equal(r.model, m);
    assert.match(r.choices[0].text, /^[a-z]{12}$/);
    alone[m] = r.choices[0].text;
  }
  assert.notEqual(alone.a, alone[MODEL_NAME], `a == base: ${alone.a}`);
  assert.notEqual(alone.b, alone[MODEL_NAME], `b == base: ${alone.b}`);
  assert.notEqual(alone.a, alone.b, `a == b: ${alone.a}`);
});
await C.check("completions: repeating a request on an adapter gives the same text", async () => {
  assert.equal((await complete("a")).choices[0].text, alone.a);
  assert.equal((await complete("b")).choices[0].text, alone.b);
});
await C.check("mixed batch: the same requests at once (base, a, b, several prompts) give exactly the texts they give alone", async () => {
  const prompts = ["hello", "the cat sat", "zz top"];
  const want = {};
  for (const p of prompts) for (const m of [MODEL_NAME, "a", "b"]) want[`${m}|${p}`] = (await complete(m, p)).choices[0].text;
  const jobs = [];
  for (let round = 0; round < 2; round++)
    for (const p of prompts) for (const m of ["a", MODEL_NAME, "b"]) jobs.push([m, p, complete(m, p)]);
  const bad = [];
  for (const [m, p, job] of jobs) {
    const r = await job;
    if (r.choices[0].text !== want[`${m}|${p}`] || r.model !== m) bad.push(`${m}/${p}: ${r.choices[0].text} vs ${want[`${m}|${p}`]}`);
  }
  assert.deepEqual(bad, []);
});
await C.check("completions: streaming on an adapter gives the same text, every chunk names the adapter", async () => {
  const stream = await client.completions.create({ model: "b", prompt: "hello", ...GREEDY, stream: true });
  let text = "";
  for await (const ch of stream) {
    assert.equal(ch.model, "b");
    text += ch.choices[0]?.text ?? "";
  }
  assert.equal(text, alone.b);
});
await C.check("completions: n = 2 with a seed on an adapter: both choices, the response names it; the seed repeats", async () => {
  const req = { temperature: 1, seed: 7, n: 2, ignore_eos: true, allowed_token_ids: LETTERS, max_tokens: 10 };
  const r1 = await client.completions.create({ model: "a", prompt: "hello", ...req });
  const r2 = await client.completions.create({ model: "a", prompt: "hello", ...req });
  const rb = await client.completions.create({ model: MODEL_NAME, prompt: "hello", ...req });
  assert.equal(r1.model, "a");
  assert.equal(r1.choices.length, 2);
  assert.deepEqual(r1.choices.map((c) => c.text), r2.choices.map((c) => c.text));
  assert.notDeepEqual(r1.choices.map((c) => c.text), rb.choices.map((c) => c.text));
});
let chatA;
await C.check("chat: an adapter's chat completion names it, differs from the base model's, and repeats (also streamed)", async () => {
  const body = { messages: [{ role: "user", content: "hi" }], ...GREEDY };
  const ra = await client.chat.completions.create({ model: "a", ...body });
  const rbase = await client.chat.completions.create({ model: MODEL_NAME, ...body });
  chatA = ra.choices[0].message.content;
  assert.equal(ra.model, "a");
  assert.match(chatA, /^[a-z]{12}$/);
  assert.notEqual(chatA, rbase.choices[0].message.content);
  const stream = await client.chat.completions.create({ model: "a", ...body, stream: true });
  let text = "";
  for await (const ch of stream) {
    assert.equal(ch.model, "a");
    text += ch.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, chatA);
});
await C.check("unknown model: vLLM's 404 {error: {message, type NotFoundError, param model, code 404}} (raw and through the client)", async () => {
  const r = await post(srv.port, "/v1/completions", { model: "nope", prompt: "hi", max_tokens: 2 });
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { error: { message: "The model `nope` does not exist.", type: "NotFoundError", param: "model", code: 404 } });
  await assert.rejects(client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] }),
    (e) => e.status === 404 && /does not exist/.test(e.message));
});
await C.check("/tokenize accepts an adapter's name as its model", async () => {
  const r = await post(srv.port, "/tokenize", { model: "a", prompt: "hi" });
  assert.equal(r.status, 200, r.text);
});
await C.check("/metrics: vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters,waiting_lora_adapters} = a current timestamp", async () => {
  const s = (await fetchMetrics(srv.port)).filter((x) => x.name === "vllm:lora_requests_info");
  assert.equal(s.length, 1, JSON.stringify(s));
  assert.equal(s[0].labels.max_lora, "2");
  assert.equal(s[0].labels.running_lora_adapters, "");
  assert.equal(s[0].labels.waiting_lora_adapters, "");
  assert.ok(Math.abs(s[0].value - Date.now() / 1000) < 60, `value ${s[0].value}`);
});

// ---- runtime loading and unloading ----
const load = (body) => post(srv.port, "/v1/load_lora_adapter", body);
const unload = (body) => post(srv.port, "/v1/unload_lora_adapter", body);
await C.check("load_lora_adapter: 200 with vLLM's plain-text line; the adapter is listed and used", async () => {
  const r = await load({ lora_name: "c", lora_path: CC });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, "Success: LoRA adapter 'c' added successfully.");
  const card = (await client.models.list()).data.find((m) => m.id === "c");
  assert.ok(card, "c is not in /v1/models");
  assert.equal(card.root, CC);
  assert.equal(card.parent, MODEL_NAME);
  const t = (await complete("c")).choices[0].text;
  assert.match(t, /^[a-z]{12}$/);
  assert.notEqual(t, alone[MODEL_NAME]);
  assert.equal((await complete("c")).choices[0].text, t);
});
await C.check("load_lora_adapter: the same name twice is vLLM's 400 (InvalidUserInput, 'has already been loaded')", async () => {
  const r = await load({ lora_name: "c", lora_path: CC });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type, "InvalidUserInput");
  assert.equal(r.json.error.code, 400);
  assert.match(r.json.error.message, /^The lora adapter 'c' has already been loaded\./);
});
await C.check("load_lora_adapter: a folder without adapter_config.json is vLLM's 404 'No adapter found', naming the file", async () => {
  const r = await load({ lora_name: "d", lora_path: EMPTY });
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.error.type, "NotFoundError");
  assert.match(r.json.error.message, /^Loading lora d failed: No adapter found for /);
  assert.match(r.json.error.message, /adapter_config\.json/);
  assert.ok(!(await client.models.list()).data.some((m) => m.id === "d"));
});
await C.check("load_lora_adapter: rank above --max-lora-rank is a 400 naming the file, the tensor and the flag", async () => {
  const r = await load({ lora_name: "big", lora_path: BIG });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.type, "BadRequestError");
  assert.match(r.json.error.message, /adapter_model\.safetensors: tensor '[^']*q_proj\.lora_A\.weight' has rank 32, above --max-lora-rank 16/);
});
await C.check("load_lora_adapter: empty name or path, missing fields: 400", async () => {
  const e = await load({ lora_name: "", lora_path: CC });
  assert.equal(e.status, 400);
  assert.equal(e.json.error.message, "Both 'lora_name' and 'lora_path' must be provided.");
  const m = await load({ lora_name: "x" });
  assert.equal(m.status, 400);
  assert.equal(m.json.error.param, "lora_path");
});
await C.check("unload while a stream on the adapter runs: the stream ends normally ([DONE], every token); new requests get 404", async () => {
  const n = 4, maxTok = 480;
  let unloadDone = null, firstEvent = null;
  const events = [];
  const stream = streamPost(srv.port, "/v1/completions", {
    model: "c", prompt: "hello", max_tokens: maxTok, temperature: 1, seed: 1, n, ignore_eos: true, allowed_token_ids: LETTERS,
    stream: true, stream_options: { include_usage: true },
  }, {
    onEvent: (ev) => {
      events.push(ev);
      if (!firstEvent) firstEvent = unload({ lora_name: "c" }).then(async (r) => {
        unloadDone = { status: r.status, text: r.text, eventsSoFar: events.length, streamDone: events.some((e) => e.done) };
        unloadDone.after = await post(srv.port, "/v1/completions", { model: "c", prompt: "hi", max_tokens: 2 });
        unloadDone.metrics = (await fetchMetrics(srv.port)).find((x) => x.name === "vllm:lora_requests_info");
      });
    },
  });
  const st = await stream;
  await firstEvent;
  assert.ok(unloadDone, "no event arrived");
  assert.equal(unloadDone.status, 200, unloadDone.text);
  assert.equal(unloadDone.text, "Success: LoRA adapter 'c' removed successfully.");
  assert.equal(unloadDone.streamDone, false, "the stream had ended before the unload answered: nothing was tested");
  assert.equal(st.status, 200);
  assert.ok(st.done, "no [DONE]");
  assert.ok(!st.events.some((e) => e.json && e.json.error), "an error event");
  const texts = Array(n).fill("");
  for (const e of st.events) for (const c of e.json?.choices ?? []) texts[c.index] += c.text;
  assert.deepEqual(texts.map((t) => t.length), Array(n).fill(maxTok));
  assert.ok(texts.every((t) => /^[a-z]+$/.test(t)));
  const usage = st.events.filter((e) => e.json?.usage).at(-1).json.usage;
  assert.equal(usage.completion_tokens, n * maxTok);
  assert.ok(st.events.every((e) => !e.json || e.json.model === "c"));
  assert.equal(unloadDone.after.status, 404, unloadDone.after.text);
  assert.equal(unloadDone.after.json.error.message, "The model `c` does not exist.");
  // while it ran, the gauge named the unloaded adapter among the running ones
  assert.ok(unloadDone.metrics, "no vllm:lora_requests_info");
  assert.match(unloadDone.metrics.labels.running_lora_adapters, /(^|,)c(,|$)/, JSON.stringify(unloadDone.metrics.labels));
});
await C.check("after the unload: c is gone from /v1/models, requests naming it get 404, unloading it again is vLLM's 404", async () => {
  assert.ok(!(await client.models.list()).data.some((m) => m.id === "c"));
  const r = await post(srv.port, "/v1/completions", { model: "c", prompt: "hi", max_tokens: 2 });
  assert.equal(r.status, 404);
  const u = await unload({ lora_name: "c" });
  assert.equal(u.status, 404);
  assert.deepEqual(u.json, { error: { message: "The lora adapter 'c' cannot be found.", type: "NotFoundError", param: null, code: 404 } });
  assert.equal((await complete("a")).choices[0].text, alone.a, "a still answers as before");
});
await C.check("reloading the same folder under a new name gives the same outputs as before", async () => {
  assert.equal((await load({ lora_name: "c2", lora_path: CC })).status, 200);
  const before = (await load({ lora_name: "a2", lora_path: A })).status;
  assert.equal(before, 200);
  assert.equal((await complete("a2")).choices[0].text, alone.a);
});
await srv.stop();

// ---- one slot and one adapter in memory: each switch drops an adapter and reads it again ----
const one = await startServerOrExit(C, ["--enable-lora", "--max-loras", "1", "--max-cpu-loras", "1", "--lora-modules",
  `a=${A}`, `b=${B}`], { name: "lora-one" });
await C.check("--max-loras 1 --max-cpu-loras 1: a, b, a, base, b one by one and all at once give the two-slot server's texts", async () => {
  const c1 = new OpenAI({ baseURL: `http://127.0.0.1:${one.port}/v1`, apiKey: "sk-anything", maxRetries: 0, timeout: 60000 });
  const run = (m) => c1.completions.create({ model: m, prompt: "hello", ...GREEDY }).then((r) => r.choices[0].text);
  const order = ["a", "b", "a", MODEL_NAME, "b"];
  for (const m of order) assert.equal(await run(m), alone[m], m);
  assert.deepEqual(await Promise.all(order.map(run)), order.map((m) => alone[m]));
});
await one.stop();

// ---- without VLLM_ALLOW_RUNTIME_LORA_UPDATING (and without --enable-lora) ----
const plain = await startServerOrExit(C, [], { name: "plain", env: { VLLM_ALLOW_RUNTIME_LORA_UPDATING: "0" } });
await C.check("without VLLM_ALLOW_RUNTIME_LORA_UPDATING the LoRA routes are unknown paths (404 Not Found)", async () => {
  for (const p of ["/v1/load_lora_adapter", "/v1/unload_lora_adapter"]) {
    const r = await post(plain.port, p, { lora_name: "a", lora_path: A });
    assert.equal(r.status, 404, `${p}: ${r.status}`);
    assert.deepEqual(r.json, { detail: "Not Found" });
  }
});
await C.check("without --enable-lora: no vllm:lora_requests_info, an adapter's name is an unknown model", async () => {
  assert.ok(!(await fetchMetrics(plain.port)).some((x) => x.name === "vllm:lora_requests_info"));
  const r = await post(plain.port, "/v1/completions", { model: "a", prompt: "hi", max_tokens: 2 });
  assert.equal(r.status, 404);
  assert.equal((await get(plain.port, "/v1/models")).json.data.length, 1);
});
await plain.stop();
C.finish();
