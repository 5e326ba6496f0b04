// Load test for `vllmc serve` (--max-num-seqs 16, so requests queue): 64 concurrent streaming clients (raw HTTP, one keep-alive
// connection each), 4 requests each in sequence (completions and chat mixed, max_tokens 8..32,
// ignore_eos, letters only so that one token is one character), ~10% of them disconnect
// mid-stream (socket destroyed after the first 2..4 events). Afterwards every request is
// accounted for: completed ones got [DONE], finish_reason "length" and usage.completion_tokens ==
// max_tokens; /metrics: request_success_total{stop}+{length}+{abort} grew by the number of
// requests sent, {abort} by the number of disconnects, prompt/generation token counters match,
// num_requests_running / num_requests_waiting / kv_cache_usage_perc back to 0; the server's
// VmRSS after the load is within 30% + 20 MB of the value after a warm-up round.
//
// Usage (from the repository root): node tests/js/server_load.mjs
// Env: LOAD_CLIENTS (64), LOAD_ROUNDS (4), and those of server_util.mjs.
import assert from "node:assert/strict";
import http from "node:http";
import {
  Checks, startServerOrExit, streamPost, fetchMetrics, metricSum, rssBytes, sleep, get, MODEL_NAME, LETTERS,
  IM_START, IM_END, textIds, randomLetters,
} from "./server_util.mjs";

const CLIENTS = parseInt(process.env.LOAD_CLIENTS || "64", 10);
const ROUNDS = parseInt(process.env.LOAD_ROUNDS || "4", 10);
const MAX_SEQS = 16; // fewer than the clients: requests queue (num_requests_waiting > 0) during the load
const CUT_MAX_TOKENS = 300; // long enough that a request is always still running when it is cut
const C = new Checks(`server_load.mjs (${CLIENTS} clients x ${ROUNDS} streaming requests)`);
const model = MODEL_NAME;
const L = { model_name: model };
const t0 = Date.now();
// Under the ASan build (make asan) freed memory sits in ASan's quarantine (256 MB by default) and
// would read as RSS growth: keep the quarantine small so the RSS check means the same in both builds.
// (The variable is ignored by an ordinary build; leaks there are LeakSanitizer's job at exit.)
const asan = (process.env.ASAN_OPTIONS ? process.env.ASAN_OPTIONS + ":" : "") +
  "quarantine_size_mb=4:thread_local_quarantine_size_kb=64";
// A 4 MB KV pool (~500 blocks): the prefix cache hands out never-used blocks first, so a large pool
// would read as RSS growth until every page of it has been touched once.
const srv = await startServerOrExit(C, ["--max-num-seqs", String(MAX_SEQS)],
  { name: "load", env: { ASAN_OPTIONS: asan, VLLM_CPU_KVCACHE_SPACE: "0.004" } });
C.ok(`server starts (port ${srv.port}, pid ${srv.pid})`);
const port = srv.port;

const chatPromptLen = (content) =>
  [IM_START, ...textIds(`user\n${content}`), IM_END, ...textIds("\n"), IM_START, ...textIds("assistant\n")].length;

/** The g-th request of the run: deterministic mix. */
function makeRequest(g, cutAllowed) {
  const chatKind = g % 2 === 1;
  const cut = cutAllowed && g % 10 === 3;
  const maxTokens = cut ? CUT_MAX_TOKENS : 8 + ((g * 7) % 25);
  const content = randomLetters(5 + (g % 40), 1000 + g);
  const sampling = g % 3 === 0 ? { temperature: 0 } : { temperature: 1, seed: g };
  const common = { model, max_tokens: maxTokens, ignore_eos: true, allowed_token_ids: LETTERS, stream: true,
    stream_options: { include_usage: true }, ...sampling };
  return chatKind
    ? { g, path: "/v1/chat/completions", body: { ...common, messages: [{ role: "user", content }] }, promptLen: chatPromptLen(content), maxTokens, cut, chat: true, cutAfter: 2 + (g % 3) }
    : { g, path: "/v1/completions", body: { ...common, prompt: content }, promptLen: 1 + content.length, maxTokens, cut, chat: false, cutAfter: 2 + (g % 3) };
}

/** Runs one request; returns a record of what happened. */
async function runOne(rq, agent) {
  let events = 0;
  const rec = { ...rq, ok: false, problems: [] };
  let r;
  try {
    r = await streamPost(port, rq.path, rq.body, { agent, onEvent: () => (rq.cut && ++events >= rq.cutAfter ? "cut" : undefined) });
  } catch (e) {
    rec.problems.push(`request error: ${e.message}`);
    return rec;
  }
  rec.status = r.status;
  if (r.status !== 200) { rec.problems.push(`HTTP ${r.status}: ${r.text.slice(0, 200)}`); return rec; }
  if (rq.cut) {
    rec.ok = r.cut;
    if (!r.cut) rec.problems.push(`stream ended before the cut (${r.events.length} events)`);
    return rec;
  }
  if (!r.done) rec.problems.push("no data: [DONE]");
  const errs = r.events.filter((e) => e.json && e.json.error);
  if (errs.length) rec.problems.push(`error event: ${JSON.stringify(errs[0].json)}`);
  const chunks = r.events.filter((e) => e.json && !e.json.error).map((e) => e.json);
  const usage = chunks.length ? chunks[chunks.length - 1].usage : null;
  if (!usage || chunks[chunks.length - 1].choices.length !== 0) rec.problems.push("no final usage chunk");
  else {
    if (usage.completion_tokens !== rq.maxTokens) rec.problems.push(`completion_tokens ${usage.completion_tokens} != ${rq.maxTokens}`);
    if (usage.prompt_tokens !== rq.promptLen) rec.problems.push(`prompt_tokens ${usage.prompt_tokens} != ${rq.promptLen}`);
  }
  const choices = chunks.flatMap((c) => c.choices);
  const text = choices.map((ch) => (rq.chat ? ch.delta?.content ?? "" : ch.text ?? "")).join("");
  if (!new RegExp(`^[a-z]{${rq.maxTokens}}$`).test(text)) rec.problems.push(`text ${JSON.stringify(text.slice(0, 60))} is not ${rq.maxTokens} letters`);
  const fins = choices.map((ch) => ch.finish_reason).filter((f) => f != null);
  if (fins.length !== 1 || fins[0] !== "length") rec.problems.push(`finish_reasons ${JSON.stringify(fins)}`);
  const ids = new Set(chunks.map((c) => c.id));
  if (ids.size !== 1) rec.problems.push(`${ids.size} ids`);
  rec.ok = rec.problems.length === 0;
  return rec;
}

async function runClients(rounds, firstIndex, cutAllowed) {
  const records = [];
  await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let j = 0; j < rounds; j++) records.push(await runOne(makeRequest(firstIndex + i * rounds + j, cutAllowed), agent));
    } finally {
      agent.destroy();
    }
  }));
  return records;
}

async function waitIdle(ms) {
  const t = Date.now();
  for (;;) {
    const s = await fetchMetrics(port);
    const busy = metricSum(s, "vllm:num_requests_running", L) + metricSum(s, "vllm:num_requests_waiting", L);
    if (busy === 0 && metricSum(s, "vllm:kv_cache_usage_perc", L) === 0) return { s, ok: true };
    if (Date.now() - t > ms) return { s, ok: false };
    await sleep(100);
  }
}
const report = (recs) => recs.filter((r) => !r.ok).slice(0, 5).map((r) => `#${r.g} ${r.path} max_tokens ${r.maxTokens}${r.cut ? " (cut)" : ""}: ${r.problems.join("; ")}`).join("\n    ");

// --- warm-up: one request per client, no disconnects ----------------------------------------------
const warm = await runClients(1, 100000, false);
C.expect(`warm-up: ${warm.length} streaming requests completed correctly`, warm.every((r) => r.ok), report(warm));
let idle = await waitIdle(5000);
C.expect("warm-up: idle afterwards", idle.ok, "gauges not back to 0");
const rss0 = rssBytes(srv.pid);
const m0 = idle.s;

// --- the load ----------------------------------------------------------------------------------------
const tLoad = Date.now();
let sampling = true, maxRunning = 0, maxWaiting = 0, samples = 0;
const sampler = (async () => {
  while (sampling) {
    try {
      const s = await fetchMetrics(port);
      maxRunning = Math.max(maxRunning, metricSum(s, "vllm:num_requests_running", L));
      maxWaiting = Math.max(maxWaiting, metricSum(s, "vllm:num_requests_waiting", L));
      samples++;
    } catch { /* counted below */ }
    await sleep(25);
  }
})();
const recs = await runClients(ROUNDS, 0, true);
sampling = false;
await sampler;
const loadMs = Date.now() - tLoad;
const sent = recs.length, cuts = recs.filter((r) => r.cut), done = recs.filter((r) => !r.cut);
console.log(`  (load: ${sent} requests, ${cuts.length} disconnects, ${(loadMs / 1000).toFixed(1)} s)`);
C.expect(`all ${sent} requests sent (${CLIENTS} x ${ROUNDS})`, sent === CLIENTS * ROUNDS, `${sent}`);
C.expect(`completed requests (${done.length}): [DONE], usage.completion_tokens == max_tokens, prompt_tokens, ${"letters"} text, one finish_reason "length"`,
  done.every((r) => r.ok), `${done.filter((r) => !r.ok).length} bad:\n    ${report(done)}`);
C.expect(`disconnecting requests (${cuts.length}): got HTTP 200 and were cut mid-stream`, cuts.every((r) => r.ok), report(cuts));

C.expect(`/metrics during the load (${samples} samples): num_requests_running <= --max-num-seqs ${MAX_SEQS} (max ${maxRunning}), requests queued (max waiting ${maxWaiting})`,
  samples > 0 && maxRunning <= MAX_SEQS && maxRunning > 0 && maxWaiting > 0);
idle = await waitIdle(5000);
let m1 = idle.s;
// the finished-request counters may trail the responses by a moment
for (const t = Date.now(); Date.now() - t < 5000; await sleep(50)) {
  m1 = await fetchMetrics(port);
  if (metricSum(m1, "vllm:request_success_total", L) - metricSum(m0, "vllm:request_success_total", L) >= sent) break;
}
const d = (name, labels = {}) => metricSum(m1, name, { ...L, ...labels }) - metricSum(m0, name, { ...L, ...labels });
await C.check("after the load: num_requests_running 0, num_requests_waiting 0, kv_cache_usage_perc 0 (within 5 s)", () => {
  assert.equal(metricSum(m1, "vllm:num_requests_running", L), 0, "running");
  assert.equal(metricSum(m1, "vllm:num_requests_waiting", L), 0, "waiting");
  assert.equal(metricSum(m1, "vllm:kv_cache_usage_perc", L), 0, "kv_cache_usage_perc");
});
await C.check("request_success_total: stop + length + abort == requests sent; stop 0; abort == disconnects", () => {
  const stop = d("vllm:request_success_total", { finished_reason: "stop" });
  const length = d("vllm:request_success_total", { finished_reason: "length" });
  const abort = d("vllm:request_success_total", { finished_reason: "abort" });
  const msg = `stop ${stop} length ${length} abort ${abort}; sent ${sent}, disconnects ${cuts.length}`;
  assert.equal(stop + length + abort, sent, msg);
  assert.equal(stop, 0, msg);
  assert.equal(abort, cuts.length, msg);
  assert.equal(length, done.length, msg);
});
await C.check("prompt_tokens_total grew by the prompt tokens of all requests; generation_tokens_total by at least the completed tokens", () => {
  const wantPrompt = recs.reduce((a, r) => a + r.promptLen, 0);
  assert.equal(d("vllm:prompt_tokens_total"), wantPrompt);
  const gen = d("vllm:generation_tokens_total");
  const minGen = done.reduce((a, r) => a + r.maxTokens, 0) + cuts.reduce((a, r) => a + r.cutAfter - 1, 0);
  const maxGen = done.reduce((a, r) => a + r.maxTokens, 0) + cuts.length * CUT_MAX_TOKENS;
  assert.ok(gen >= minGen && gen < maxGen, `generation tokens ${gen}, expected in [${minGen}, ${maxGen})`);
});
await C.check("histograms counted every request (ttft _count, e2e _count == requests sent)", () => {
  assert.equal(d("vllm:time_to_first_token_seconds_count"), sent, "ttft");
  assert.ok(d("vllm:e2e_request_latency_seconds_count") >= done.length, "e2e");
});
await C.check("RSS stable: VmRSS after the load <= 1.3 x after warm-up + 20 MB", () => {
  const rss1 = rssBytes(srv.pid);
  const mb = (b) => (b / 1048576).toFixed(1);
  console.log(`  (VmRSS after warm-up ${mb(rss0)} MB, after the load ${mb(rss1)} MB)`);
  assert.ok(rss1 <= rss0 * 1.3 + 20 * 1048576, `${mb(rss0)} MB -> ${mb(rss1)} MB`);
});
await C.check("server healthy after the load", async () => { assert.equal((await get(port, "/health")).status, 200); });
const st = await srv.stop("SIGTERM");
C.expect("SIGTERM: server exits 0", st.code === 0, `exit ${JSON.stringify(st)}\n${srv.log().slice(-2000)}`);
const totalS = (Date.now() - t0) / 1000;
C.expect(`total run time ${totalS.toFixed(1)} s < 120 s`, totalS < 120);
C.finish();
