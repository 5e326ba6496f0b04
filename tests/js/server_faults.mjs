// Allocation failures through the whole server, as SQLite's fault injection does it: against a
// `make test-faults` build (build/asan/vllmc: ASan + LeakSanitizer, allocation counters), each
// kind of request is sent with `X-Vllmc-Fault-Alloc: N` for N = 1, 2, ... until allocation N is never
// reached. Every answer must be the clean answer, or an error with a message (a JSON 4xx/5xx; for a
// stream, an error event and [DONE], or a cut stream); afterwards the server must answer the same
// request exactly as before (nothing poisoned: engine, tokenizer, caches). At exit LeakSanitizer
// reports any leak on the failure paths (the server must exit 0).
//
// Usage (from the repository root): VLLMC=build/asan/vllmc node tests/js/server_faults.mjs
import assert from "node:assert/strict";
import { Checks, startServerOrExit, request, post, streamPost, sleep, MODEL_NAME } from "./server_util.mjs";

const C = new Checks("server_faults.mjs (allocation N fails)");
const model = MODEL_NAME;
const GREEDY = { temperature: 0, max_tokens: 6, ignore_eos: true };
const kinds = [
  { name: "completion", path: "/v1/completions", body: { model, prompt: "hello", logprobs: 2, ...GREEDY } },
  { name: "chat", path: "/v1/chat/completions", body: { model, messages: [{ role: "user", content: "hi" }], ...GREEDY } },
  { name: "streaming chat", path: "/v1/chat/completions", stream: true,
    body: { model, messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true }, ...GREEDY } },
  { name: "streaming completion", path: "/v1/completions", stream: true, body: { model, prompt: "hello", n: 2, stream: true, ...GREEDY } },
  { name: "tokenize", path: "/tokenize", body: { model, messages: [{ role: "user", content: "hi" }] } },
  { name: "detokenize", path: "/detokenize", body: { model, tokens: [1, 259, 260, 261] } },
];
const MAX_N = parseInt(process.env.FAULT_MAX_N || "4000", 10);

/** What a clean answer says, without ids and times. */
function essence(kind, r) {
  if (kind.stream) {
    const text = {};
    for (const e of r.events) {
      const ch = e.json && e.json.choices ? e.json.choices : [];
      for (const c of ch) text[c.index] = (text[c.index] || "") + (c.text ?? c.delta?.content ?? "");
    }
    return JSON.stringify(text);
  }
  const j = r.json;
  if (!j) return r.text;
  if (j.choices) return JSON.stringify(j.choices.map((c) => [c.text ?? c.message?.content, c.finish_reason, c.logprobs]));
  return JSON.stringify(j);
}

async function send(port, kind, n) {
  const headers = n ? { "X-Vllmc-Fault-Alloc": String(n) } : {};
  if (kind.stream) {
    return streamPost(port, kind.path, kind.body, { headers }).catch((e) => ({ error: e.message, events: [] }));
  }
  return post(port, kind.path, kind.body, { headers }).catch((e) => ({ status: 0, error: e.message }));
}

const srv = await startServerOrExit(C, [], { name: "faults" });
C.ok(`server starts (port ${srv.port})`);
const port = srv.port;
let logSeen = 0;
async function faultLine(n) { // the server's own word on whether allocation n failed
  for (let i = 0; i < 400; i++) {
    const log = srv.log().slice(logSeen);
    const m = new RegExp(`fault injection: allocation ${n} (failed|was never reached) \\((\\d+) counted\\)`).exec(log);
    if (m) { logSeen += m.index + m[0].length; return { hit: m[1] === "failed", count: parseInt(m[2], 10) }; }
    await sleep(5);
  }
  throw new Error(`no "fault injection: allocation ${n}" line in the log (is this a make test-faults build?)`);
}

for (const kind of kinds) {
  await C.check(`${kind.name}: every allocation failure gives the clean answer or a clear error; nothing poisoned`, async () => {
    logSeen = srv.log().length;
    const clean = essence(kind, await send(port, kind, 0));
    const outcomes = { clean: 0, error: 0, cut: 0 };
    let n = 1;
    for (; n <= MAX_N; n++) {
      const r = await send(port, kind, n);
      const f = await faultLine(n);
      if (!f.hit) break;
      if (kind.stream && r.status >= 400) {
        assert.ok(r.text && JSON.parse(r.text).error.message, `N=${n}: HTTP ${r.status} without a JSON error: ${r.text}`);
        outcomes.error++;
      } else if (kind.stream) {
        const err = r.events.find((e) => e.json && e.json.error);
        if (r.error || !r.done) outcomes.cut++; // the connection closed mid-stream: allowed for a failed allocation
        else if (err) { assert.ok(err.json.error.message, `N=${n}: error event without a message`); outcomes.error++; }
        else { assert.equal(essence(kind, r), clean, `N=${n}: a stream that ended normally differs from the clean one:\n${essence(kind, r).slice(0, 300)}\nclean:\n${clean.slice(0, 300)}`); outcomes.clean++; }
      } else if (r.status === 200) {
        assert.equal(essence(kind, r), clean, `N=${n}: HTTP 200 but not the clean answer:\n${essence(kind, r).slice(0, 400)}\nclean:\n${clean.slice(0, 400)}`);
        outcomes.clean++;
      } else {
        assert.ok(r.status >= 400 && r.status < 600, `N=${n}: HTTP ${r.status} ${r.error || ""}`);
        assert.ok(r.json && r.json.error && r.json.error.message, `N=${n}: HTTP ${r.status} without a JSON error: ${r.text.slice(0, 200)}`);
        outcomes.error++;
      }
      const again = essence(kind, await send(port, kind, 0));
      assert.equal(again, clean, `N=${n}: the next clean request differs (poisoned)`);
    }
    assert.ok(n <= MAX_N, `still hitting allocations at N=${MAX_N}`);
    console.log(`    (${n - 1} allocations failed in turn: ${outcomes.clean} clean answers, ${outcomes.error} errors, ${outcomes.cut} cut streams)`);
  });
}
const h = await request(port, "GET", "/health");
C.expect("healthy after the sweep", h.status === 200, `HTTP ${h.status}`);
const st = await srv.stop("SIGTERM", 30000);
C.expect("SIGTERM: exit 0 (LeakSanitizer found no leak)", st.code === 0, `${JSON.stringify(st)}\n${srv.log().slice(-3000)}`);
C.finish();
