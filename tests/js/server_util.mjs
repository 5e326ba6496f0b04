// Shared helpers for the `vllmc serve` tests (server_openai.mjs, server_http.mjs,
// server_load.mjs): make the tiny chat model once per run, start/stop servers, raw HTTP
// and SSE, Prometheus text parsing, and a small check runner that prints every check and
// makes the process exit nonzero on any failure.
//
// Env: VLLMC (default build/vllmc, relative to the repository root), VLLMC_TEST_MODEL (a
// model dir made by tests/fixtures/make_chat_model.sh; made here in a temp dir when unset),
// VLLMC_SERVE_LOG=1 (echo the servers' stderr), VLLMC_TEST_DEVICE (auto|cpu|gpu: every server is
// started with --device VALUE unless its args name a device; with gpu a server whose log does not
// say "device vulkan" fails to start, so a GPU run cannot quietly test the CPU).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const VLLMC = path.resolve(ROOT, process.env.VLLMC || "build/vllmc");
export const MODEL_NAME = "test-model";

// Token ids of the test model (tests/fixtures/make_chat_model.sh).
export const BOS = 1, EOS = 2, IM_START = 285, IM_END = 286;
export const LETTERS = Array.from({ length: 26 }, (_, i) => 259 + i); // a..z
export const letterId = (ch) => 259 + ch.charCodeAt(0) - 97;
/** Ids of a string under the test tokenizer (no merges: letters a..z are tokens, every other
 *  byte is its byte-fallback token <0xNN> = NN + 3; special tokens are not recognised here). */
export function textIds(s) {
  const ids = [];
  for (const b of Buffer.from(s, "utf8")) ids.push(b >= 97 && b <= 122 ? 259 + b - 97 : b + 3);
  return ids;
}

// ---------------------------------------------------------------------------
// model dir, once per run

let modelDir = null;
const cleanups = [];
export function getModelDir() {
  if (modelDir) return modelDir;
  if (process.env.VLLMC_TEST_MODEL) return (modelDir = process.env.VLLMC_TEST_MODEL);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vllmc-serve-model-"));
  const r = spawnSync("bash", [path.join(ROOT, "tests/fixtures/make_chat_model.sh"), dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`make_chat_model.sh failed: ${r.stderr}`);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return (modelDir = dir);
}

// ---------------------------------------------------------------------------
// servers

const servers = new Set();
function killAll() {
  for (const s of servers) try { s.child.kill("SIGKILL"); } catch { /* gone */ }
  for (const c of cleanups.splice(0)) try { c(); } catch { /* ignore */ }
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { killAll(); process.exit(130); });

/**
 * Start `vllmc serve MODEL --port 0 --host 127.0.0.1 --served-model-name test-model ...args` (names: the
 * --served-model-name values; [] leaves the flag out).
 * Resolves when stderr (or stdout) shows vllmc's "INFO vllmc: listening on http://HOST:PORT" line and
 * GET /health then answers 200; rejects on exit or after 60 s.
 * Returns {port, pid, child, log(), stop(signal) -> Promise<{code, signal, ms}>}.
 */
export function startServer(args = [], { env = {}, model = getModelDir(), timeoutMs = 60000, name = "server", names = [MODEL_NAME] } = {}) {
  const device = process.env.VLLMC_TEST_DEVICE && !args.includes("--device") ? process.env.VLLMC_TEST_DEVICE : null;
  const argv = ["serve", model, "--port", "0", "--host", "127.0.0.1", ...(names.length ? ["--served-model-name", ...names] : []),
    ...(device ? ["--device", device] : []), ...args];
  const child = spawn(VLLMC, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let logText = "";
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
  const srv = { child, pid: child.pid, port: 0, log: () => logText, exited };
  servers.add(srv);
  exited.then(() => servers.delete(srv));
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill("SIGKILL");
      reject(new Error(`${name}: no "listening on" line and /health 200 within ${timeoutMs} ms; log:\n${tail(logText)}`));
    }, timeoutMs);
    const onData = (chunk) => {
      const s = chunk.toString("utf8");
      if (process.env.VLLMC_SERVE_LOG) process.stderr.write(`[${name}] ${s}`);
      logText += s;
      if (logText.length > 1 << 20) logText = logText.slice(-(1 << 19));
      const m = /INFO vllmc: listening on http:\/\/[^\s:]+:(\d+)/.exec(logText);
      if (m && !srv.port) {
        srv.port = parseInt(m[1], 10);
        if (device === "gpu" && !/INFO vllmc: device vulkan: /.test(logText)) fail(`--device gpu: no "device vulkan" line before "listening on"`);
        else healthy(srv.port).then((ok) => (ok ? ready() : fail(`/health did not answer 200 after the "listening on" line`)));
      }
    };
    const fail = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${name}: ${why}; log:\n${tail(logText)}`));
    };
    const ready = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      srv.stop = async (signal = "SIGTERM", waitMs = 10000) => {
        const t0 = Date.now();
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        let timer;
        const r = await Promise.race([exited, new Promise((res) => { timer = setTimeout(() => res(null), waitMs); })]);
        clearTimeout(timer);
        if (r === null) {
          child.kill("SIGKILL");
          await exited;
          return { code: null, signal: "timeout", ms: Date.now() - t0 };
        }
        return { ...r, ms: Date.now() - t0 };
      };
      resolve(srv);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (e) => { if (!done) { done = true; clearTimeout(timer); reject(e); } });
    exited.then(({ code, signal }) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`${name}: exited (code ${code}, signal ${signal}) before listening; log:\n${tail(logText)}`));
      }
    });
  });
}

/** GET /health on 127.0.0.1:port, a few tries: true on a 200. */
async function healthy(port, tries = 20) {
  for (let i = 0; i < tries; i++) {
    const status = await new Promise((res) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/health", agent: false }, (r) => { r.resume(); res(r.statusCode); });
      req.setTimeout(5000, () => req.destroy());
      req.on("error", () => res(0));
    });
    if (status === 200) return true;
    await sleep(50);
  }
  return false;
}

/** startServer, or (when it fails) the failed "server starts" check, the suite's summary and exit 1. */
export async function startServerOrExit(C, args = [], opts = {}) {
  try {
    return await startServer(args, opts);
  } catch (e) {
    C.fail("server starts", e.message);
    C.finish();
    process.exit(1);
  }
}

export function tail(s, n = 3000) { return s.length > n ? "..." + s.slice(-n) : s; }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process in bytes (from /proc/PID/status). */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return parseInt(m[1], 10) * 1024;
}

// ---------------------------------------------------------------------------
// raw HTTP

/**
 * One HTTP request. body: object (sent as JSON), string or Buffer (sent as is). Resolves
 * {status, headers, text, json} (json undefined when the body is not JSON).
 */
export function request(port, method, pathName, { body, headers = {}, timeoutMs = 60000, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    let payload = null;
    const h = { ...headers };
    if (body !== undefined) {
      payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body), "utf8");
      if (!Object.keys(h).some((k) => k.toLowerCase() === "content-type")) h["Content-Type"] = "application/json";
      h["Content-Length"] = payload.length;
    }
    const req = http.request({ host: "127.0.0.1", port, method, path: pathName, headers: h, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on("error", reject);
    });
    const timer = setTimeout(() => { req.destroy(new Error(`${method} ${pathName}: timeout after ${timeoutMs} ms`)); }, timeoutMs);
    req.on("error", (e) => { clearTimeout(timer); reject(e); });
    if (payload) req.end(payload); else req.end();
  });
}
export const get = (port, p, opts) => request(port, "GET", p, opts);
export const post = (port, p, body, opts = {}) => request(port, "POST", p, { ...opts, body });

/**
 * A streaming POST: parses `data: ...` SSE events as they arrive. onEvent(ev, req) gets each event
 * ({json} or {done: true} or {raw}) and may return "cut" to destroy the socket. Resolves
 * {status, headers, events, done (saw [DONE]), cut, text (raw body)}.
 */
export function streamPost(port, pathName, body, { headers = {}, onEvent, agent = false, timeoutMs = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body), "utf8");
    const req = http.request({
      host: "127.0.0.1", port, method: "POST", path: pathName, agent,
      headers: { "Content-Type": "application/json", "Content-Length": payload.length, ...headers },
    }, (res) => {
      const out = { status: res.statusCode, headers: res.headers, events: [], done: false, cut: false, text: "" };
      let buf = "";
      let finished = false;
      const finish = () => { if (!finished) { finished = true; clearTimeout(timer); resolve(out); } };
      res.setEncoding("utf8");
      res.on("data", (s) => {
        if (out.cut) return;
        out.text += s;
        buf += s;
        let k;
        while (!out.cut && (k = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, k);
          buf = buf.slice(k).replace(/^\r?\n\r?\n/, "");
          const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
          if (!data) continue;
          let ev;
          if (data === "[DONE]") { ev = { done: true }; out.done = true; }
          else { try { ev = { json: JSON.parse(data) }; } catch { ev = { raw: data }; } }
          out.events.push(ev);
          if (onEvent && onEvent(ev, req) === "cut") {
            out.cut = true;
            req.destroy();
            res.destroy();
            finish();
          }
        }
      });
      res.on("end", finish);
      res.on("close", finish);
      res.on("error", () => finish());
    });
    const timer = setTimeout(() => req.destroy(new Error(`stream ${pathName}: timeout after ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (e) => { clearTimeout(timer); reject(e); });
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------
// Prometheus text

/** Parses the exposition format into [{name, labels: {k: v}, value}]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?\s*$/.exec(line);
    if (!m) throw new Error(`bad metrics line: ${line}`);
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;
      let lm;
      while ((lm = re.exec(m[3]))) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    const v = m[4] === "+Inf" ? Infinity : m[4] === "-Inf" ? -Infinity : parseFloat(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}
/** Sum of the samples named `name` whose labels include `want`; null when there is none. */
export function metricSum(samples, name, want = {}) {
  let sum = null;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (!Object.entries(want).every(([k, v]) => s.labels[k] === v)) continue;
    sum = (sum ?? 0) + s.value;
  }
  return sum;
}
export async function fetchMetrics(port, headers = {}) {
  const r = await get(port, "/metrics", { headers });
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status}`);
  return parseMetrics(r.text);
}

// ---------------------------------------------------------------------------
// check runner

export class Checks {
  constructor(title) { this.title = title; this.failed = []; this.passed = 0; console.log(`== ${title}`); }
  ok(name) { this.passed++; console.log(`  ok: ${name}`); }
  fail(name, msg) { this.failed.push(name); console.log(`  FAIL: ${name}: ${msg}`); }
  /** Run one check: fn may throw (assert) or return a falsy value to fail. */
  async check(name, fn) {
    try {
      const r = await fn();
      if (r === false) this.fail(name, "returned false"); else this.ok(name);
      return true;
    } catch (e) {
      this.fail(name, e && e.stack && !(e.code === "ERR_ASSERTION") ? `${e.message}\n${e.stack.split("\n").slice(1, 4).join("\n")}` : (e && e.message) || String(e));
      return false;
    }
  }
  /** Immediate assertion as a check (no function). */
  expect(name, cond, msg = "") { if (cond) this.ok(name); else this.fail(name, msg || "condition false"); return !!cond; }
  finish() {
    const n = this.passed + this.failed.length;
    if (this.failed.length) {
      console.log(`== ${this.title}: ${this.failed.length} of ${n} checks FAILED:`);
      for (const f of this.failed) console.log(`   - ${f}`);
      process.exitCode = 1;
    } else {
      console.log(`== ${this.title}: all ${n} checks passed`);
    }
  }
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function randomLetters(n, seed) {
  const r = rng(seed);
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(r() * 26));
  return s;
}
