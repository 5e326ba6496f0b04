// tool_choice "required" and a named function through the official `openai` npm client (issue #13): the
// output is constrained to the tools' parameter schemas and comes back as message.tool_calls, as vLLM's
// OpenAI server returns it without a tool parser (serving_chat.py, tool_parsers/utils.py
// get_json_schema_from_tools). Every call's arguments are judged by ajv (JSON Schema draft 2020-12)
// against its tool's parameters, its name against the tools; streaming goes through the client's own
// stream helper (chat.completions.stream -> finalChatCompletion), which joins tool-call deltas by index
// and throws when a call's first delta lacks its id, type or name. "none" and no tool_choice keep plain
// content, "auto" (needs a tool parser) is a 400; invalid tool_choice values are 400s naming the param.
//
// Usage (from the repository root): node tests/js/server_tools.mjs
import assert from "node:assert/strict";
import path from "node:path";
import { createRequire } from "node:module";
import OpenAI from "openai";
import { Checks, startServerOrExit, streamPost, MODEL_NAME } from "./server_util.mjs";

const require = createRequire(path.resolve("tests/js/package.json"));
const Ajv2020 = require("ajv/dist/2020").default;
const ajv = new Ajv2020({ strict: false });

const C = new Checks("server_tools.mjs (tool_choice required / named)");
const model = MODEL_NAME;
const messages = [{ role: "user", content: "call a tool" }];

// bounded schemas: a random model cannot run on forever inside them
const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "the weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string", maxLength: 6 }, unit: { enum: ["c", "f"] } },
        required: ["city", "unit"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "add",
      parameters: {
        type: "object",
        properties: {
          a: { type: "integer", minimum: -9, maximum: 99 },
          b: { type: "integer", minimum: 0, maximum: 9 },
          note: { type: "array", items: { type: "boolean" }, maxItems: 2 },
        },
        required: ["a", "b"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "tag",
      parameters: {
        $defs: { Color: { enum: ["red", "green"] } },
        type: "object",
        properties: { color: { $ref: "#/$defs/Color" } },
        required: ["color"],
        additionalProperties: false,
      },
    },
  },
  { type: "function", function: { name: "ping" } }, // no parameters: any object
];
const byName = Object.fromEntries(TOOLS.map((t) => [t.function.name, t.function]));
const ANY_OBJECT = { type: "object" };
const validators = Object.fromEntries(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters ?? ANY_OBJECT)]));
const named = (name) => ({ type: "function", function: { name } });

const srv = await startServerOrExit(C, [], { name: "tools" });
const port = srv.port;
C.ok(`server starts (port ${port})`);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "sk-anything", maxRetries: 0, timeout: 120000 });
const chat = (body) => client.chat.completions.create({ model, messages, ...body });

const seenIds = new Set();
/** Judge one call: id, type, name among `names`, arguments valid against the tool (when `complete`). */
function judgeCall(call, names, complete, where) {
  assert.match(call.id, /^chatcmpl-tool-[0-9a-f]{32}$/, `${where}: id ${call.id}`);
  assert.ok(!seenIds.has(call.id), `${where}: id ${call.id} seen before`);
  seenIds.add(call.id);
  assert.equal(call.type, "function", where);
  assert.ok(names.includes(call.function.name), `${where}: name ${call.function.name} not in ${names}`);
  assert.equal(typeof call.function.arguments, "string", where);
  if (!complete) return;
  let v;
  try { v = JSON.parse(call.function.arguments); } catch (e) { assert.fail(`${where}: arguments not JSON: ${JSON.stringify(call.function.arguments)}`); }
  const ok = validators[call.function.name](v);
  assert.ok(ok, `${where}: ${call.function.name}(${call.function.arguments}): ${ajv.errorsText(validators[call.function.name].errors)}`);
}

/** Judge a choice of a tool_choice request; returns its finish_reason. */
function judgeChoice(ch, mode, where) {
  const m = ch.message;
  assert.equal(m.role, "assistant", where);
  assert.ok(m.content === "" || m.content === null, `${where}: content ${JSON.stringify(m.content)}`);
  const calls = m.tool_calls ?? [];
  if (mode === "required") {
    if (ch.finish_reason === "tool_calls") {
      assert.ok(calls.length >= 1, `${where}: finish tool_calls without calls`);
      calls.forEach((c, i) => judgeCall(c, Object.keys(byName), true, `${where} call ${i}`));
    } else {
      assert.equal(ch.finish_reason, "length", `${where}: finish_reason ${ch.finish_reason}`);
      // cut: every call but the last is whole
      calls.forEach((c, i) => judgeCall(c, Object.keys(byName), i < calls.length - 1, `${where} call ${i}`));
    }
  } else {
    assert.equal(calls.length, 1, `${where}: ${calls.length} calls`);
    assert.ok(["stop", "length"].includes(ch.finish_reason), `${where}: finish_reason ${ch.finish_reason}`);
    judgeCall(calls[0], [mode], ch.finish_reason === "stop", `${where} call`);
  }
  return ch.finish_reason;
}

const GPU = process.env.VLLMC_TEST_DEVICE === "gpu";
// CI time: three settings (sampled twice, high temperature, greedy) per mode; the grammar cases are in
// server_structured.mjs and the fuzz targets
const settings = GPU ? [[1.0, 1], [0, 4]] : [[1.0, 1], [1.5, 2], [0, 4]];
for (const mode of ["required", "get_weather", "add", "tag", "ping"]) {
  const tool_choice = mode === "required" ? "required" : named(mode);
  await C.check(`${mode}: calls valid (n=2, seeds, temperatures; streaming through the client's helper)`, async () => {
    const fins = {};
    for (const [temperature, seed] of settings) {
      const n = temperature === 0 ? 1 : 2;
      const body = { tools: TOOLS, tool_choice, n, temperature, seed, max_tokens: 160 };
      const r = await chat(body);
      assert.equal(r.choices.length, n);
      for (const ch of r.choices) {
        const f = judgeChoice(ch, mode, `T=${temperature} seed ${seed} choice ${ch.index}`);
        fins[f] = (fins[f] || 0) + 1;
      }
      // the stream helper joins the deltas; the same seed gives the same calls (arguments are the
      // generated text in both forms)
      const stream = client.chat.completions.stream({ model, messages, ...body });
      const s = await stream.finalChatCompletion();
      assert.equal(s.choices.length, n);
      for (const ch of s.choices) {
        judgeChoice(ch, mode, `stream T=${temperature} seed ${seed} choice ${ch.index}`);
        const plain = r.choices[ch.index];
        assert.equal(ch.finish_reason, plain.finish_reason, "stream and plain finish alike");
        assert.deepEqual((ch.message.tool_calls ?? []).map((c) => [c.function.name, c.function.arguments]),
          (plain.message.tool_calls ?? []).map((c) => [c.function.name, c.function.arguments]), "stream and plain calls alike");
      }
    }
    const want = mode === "required" ? "tool_calls" : "stop";
    assert.ok(fins[want] > 0, `no output ended with ${want}: ${JSON.stringify(fins)}`);
    console.log(`    finish reasons: ${JSON.stringify(fins)}`);
  });
}

await C.check("stream chunks: a call's first delta has id, type, index and name; later ones index and arguments only", async () => {
  let later = 0;
  for (const [tool_choice, seed] of [["required", 11], [named("add"), 12], ["required", 13]]) {
    const s = await streamPost(port, "/v1/chat/completions",
      { model, messages, tools: TOOLS, tool_choice, stream: true, n: 2, temperature: 1, seed, max_tokens: 120 });
    assert.equal(s.status, 200);
    assert.ok(s.done, "[DONE]");
    const evs = s.events.filter((e) => e.json).map((e) => e.json);
    for (const i of [0, 1]) {
      const mine = evs.map((e) => e.choices.find((c) => c.index === i)).filter(Boolean);
      assert.deepEqual(mine[0].delta, { role: "assistant", content: "" }, "the role chunk first");
      const heads = new Set();
      for (const ch of mine.slice(1)) {
        assert.equal(ch.delta.content, undefined, "no content in a tool_choice stream");
        for (const tc of ch.delta.tool_calls ?? []) {
          assert.ok(Number.isInteger(tc.index), JSON.stringify(tc));
          if (!heads.has(tc.index)) {
            heads.add(tc.index);
            assert.match(tc.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
            assert.equal(tc.type, "function");
            assert.equal(typeof tc.function.name, "string");
            assert.equal(tc.index, heads.size - 1, "calls are announced in order");
          } else {
            later++;
            assert.deepEqual(Object.keys(tc).sort(), ["function", "index"], JSON.stringify(tc));
            assert.deepEqual(Object.keys(tc.function), ["arguments"], JSON.stringify(tc));
          }
        }
      }
      const last = mine[mine.length - 1];
      assert.ok(last.finish_reason, "the last chunk of a choice has its finish_reason");
      assert.equal(mine.filter((c) => c.finish_reason).length, 1, "one finish_reason per choice");
      if (typeof tool_choice === "object") assert.deepEqual([...heads], [0], "a named function is call 0 of its choice");
    }
  }
  console.log(`    (${later} later deltas; events that pile up merge into one chunk, so the count varies)`);
});

await C.check("streaming logprobs: no token's logprob is lost when a chunk has no call delta", async () => {
  const body = { tools: TOOLS, tool_choice: "required", temperature: 1, seed: 21, max_tokens: 60, logprobs: true };
  const plain = await chat(body);
  const s = await streamPost(port, "/v1/chat/completions", { model, messages, ...body, stream: true });
  const n = s.events.filter((e) => e.json).reduce((k, e) => k + (e.json.choices[0]?.logprobs?.content?.length ?? 0), 0);
  assert.equal(n, plain.choices[0].logprobs.content.length);
  assert.equal(n, plain.usage.completion_tokens);
});

await C.check("required replaces response_format (vLLM: the tools' schema overrides it)", async () => {
  const r = await chat({ tools: TOOLS, tool_choice: "required", temperature: 0, max_tokens: 160,
    response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string" } } } });
  judgeChoice(r.choices[0], "required", "with response_format");
  assert.ok(r.choices[0].message.tool_calls.length >= 1);
});

await C.check('tool_choice "none" and no tool_choice: plain content, no tool calls (tools only reach the template)', async () => {
  for (const extra of [{ tool_choice: "none" }, {}]) {
    const r = await chat({ tools: TOOLS, ...extra, max_tokens: 8, temperature: 0, ignore_eos: true });
    assert.equal(typeof r.choices[0].message.content, "string");
    assert.ok(r.choices[0].message.content.length > 0);
    assert.deepEqual(r.choices[0].message.tool_calls ?? [], []);
    assert.equal(r.choices[0].finish_reason, "length");
  }
});

const bad = [
  ['"auto" without a tool parser', { tools: TOOLS, tool_choice: "auto" }, "tool_choice", /"auto" tool choice requires/],
  ["required without tools", { tool_choice: "required" }, "tool_choice", /When using `tool_choice`, `tools` must be set\./],
  ["named without tools", { tool_choice: named("add") }, "tool_choice", /`tools` must be set/],
  ["an unknown string", { tools: TOOLS, tool_choice: "always" }, "tool_choice", /Invalid value for `tool_choice`: always!/],
  ["empty tools", { tools: [], tool_choice: "required" }, "tools", /must not be an empty array/],
  ["a function not in tools", { tools: TOOLS, tool_choice: named("nope") }, "tool_choice", /does not match any of the specified `tools`/],
  ["no function", { tools: TOOLS, tool_choice: { type: "function" } }, "tool_choice.function", /Invalid value for `function`: `None`/],
  ["no name", { tools: TOOLS, tool_choice: { type: "function", function: {} } }, "tool_choice.function.name", /Expected field `name`/],
  ["an empty name", { tools: TOOLS, tool_choice: named("") }, "tool_choice.function.name", /Invalid `name` in `function`/],
  ["named + structured_outputs", { tools: TOOLS, tool_choice: named("add"), structured_outputs: { regex: "a" } }, null,
    /only either use constraints for structured outputs or tools/],
  ["named + guided_json", { tools: TOOLS, tool_choice: named("add"), guided_json: { type: "object" } }, null, /not both/],
  ["an unsupported parameters schema (required)",
    { tools: [...TOOLS, { type: "function", function: { name: "weird", parameters: { type: "object", properties: { x: { not: {} } } } } }], tool_choice: "required" },
    "tools", /tool 'weird'.*'not' is not supported/],
  ["an unsupported parameters schema (named)",
    { tools: [{ type: "function", function: { name: "weird", parameters: { type: "object", properties: { x: { type: "strnig" } } } } }], tool_choice: named("weird") },
    "tools", /tool 'weird'.*unknown type/],
  ["one $defs name, two schemas",
    { tools: [TOOLS[2], { type: "function", function: { name: "other", parameters: { $defs: { Color: { type: "string" } }, type: "object" } } }], tool_choice: "required" },
    "tools", /Tool definition 'Color' has multiple schemas/],
];
for (const [what, extra, param, want] of bad) {
  await C.check(`${what} -> 400, param ${param}`, async () => {
    let err;
    try { await chat({ max_tokens: 5, ...extra }); } catch (e) { err = e; }
    assert.ok(err, "no error");
    assert.equal(err.status, 400, String(err));
    assert.equal(err.param ?? null, param);
    assert.match(err.message, want);
  });
}

await C.check("the server still answers (a plain request after the errors)", async () => {
  const r = await chat({ max_tokens: 3 });
  assert.equal(r.choices.length, 1);
});
const st = await srv.stop();
C.expect("SIGTERM: server exits 0", st.code === 0, JSON.stringify(st));
C.finish();
