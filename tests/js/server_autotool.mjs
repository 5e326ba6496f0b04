// Auto tool choice and reasoning output (issue 16) through the official `openai` npm client, as vLLM
// serves them with `--enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser qwen3`:
// a two-turn tool loop (the model calls a tool, the client runs it and sends the result, the model
// answers), streaming and not. The test model has random weights, so every output is forced with a
// regex (structured_outputs): the model must write exactly the Hermes/Qwen3 text the parsers read, and
// the test checks what the server makes of it: message.tool_calls (ids, names, arguments judged by ajv
// against the tool's parameters), reasoning / reasoning_content, content, finish_reason "tool_calls";
// the stream's deltas (raw SSE) joined equal the non-streaming message, a call's first delta carries its
// id, type and name, nothing is taken back; the client's own stream helper assembles the same calls.
// qwen3_coder (Qwen3-Coder's <function=...> calls): arguments typed by the request's tool schema.
// Also: the second turn's prompt (through /tokenize) holds the assistant's call with its arguments as
// an object and the tool's result; a malformed call is plain content, never a 500; parallel_tool_calls
// false keeps the first call; tool_choice "none" leaves the text alone; include_reasoning false drops
// the reasoning; bad tools are 400s; --chat-template-content-format; the CLI's checks of the flags.
//
// Usage (from the repository root): node tests/js/server_autotool.mjs
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import OpenAI from "openai";
import { Checks, startServerOrExit, streamPost, post, MODEL_NAME, ROOT, VLLMC, getModelDir } from "./server_util.mjs";

const require = createRequire(path.resolve(ROOT, "tests/js/package.json"));
const Ajv2020 = require("ajv/dist/2020").default;
const ajv = new Ajv2020({ strict: false });

const C = new Checks("server_autotool.mjs (auto tool choice, reasoning parser)");
const model = MODEL_NAME;
const TEMPLATE = path.join(ROOT, "tests/data/hermes_tools.jinja");

const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "the weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { enum: ["c", "f"] } },
      required: ["city"],
      additionalProperties: false,
    },
  },
};
const TIME = { type: "function", function: { name: "get_time", parameters: { type: "object", properties: { zone: { type: "string" } } } } };
const TOOLS = [WEATHER, TIME];
const validate = { get_weather: ajv.compile(WEATHER.function.parameters), get_time: ajv.compile(TIME.function.parameters) };

/** A regex that matches exactly s (the JavaScript/Python metacharacters escaped). */
const lit = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
/** Request fields that force the output to be exactly s. */
const force = (s) => ({ structured_outputs: { regex: lit(s) }, max_tokens: 200, temperature: 1, seed: 7 });

const CALL1 = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>';
const TURN1 = "<think>\nThe user wants the weather.\n</think>\n\n" + CALL1;
const TURN2 = "<think>\nok\n</think>\n\nIt is 21 C in Paris.";
const TWO_CALLS = CALL1 + '\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}\n</tool_call>';
const user = { role: "user", content: "What is the weather in Paris?" };

const srv = await startServerOrExit(C, ["--chat-template", TEMPLATE, "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
  "--reasoning-parser", "qwen3"], { name: "autotool" });
const port = srv.port;
C.ok(`server starts (port ${port})`);
C.expect("the start-up log names the parsers", /output parsers: tool calls hermes, reasoning qwen3/.test(srv.log()), srv.log().slice(-2000));
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "sk-anything", maxRetries: 0, timeout: 120000 });

const seenIds = new Set();
function judgeCall(call, where) {
  assert.match(call.id, /^chatcmpl-tool-[0-9a-f]{32}$/, `${where}: id ${call.id}`);
  assert.ok(!seenIds.has(call.id), `${where}: id ${call.id} seen before`);
  seenIds.add(call.id);
  assert.equal(call.type, "function", where);
  const v = JSON.parse(call.function.arguments);
  assert.ok(validate[call.function.name], `${where}: unknown tool ${call.function.name}`);
  assert.ok(validate[call.function.name](v), `${where}: ${ajv.errorsText(validate[call.function.name].errors)}`);
  return v;
}

/** The stream's deltas joined: {role, reasoning, reasoning_content, content, calls: [{id, type, name, arguments}], finish}. */
function joinStream(events, where) {
  const out = { reasoning: "", reasoning_content: "", content: "", calls: [], finish: null };
  let ended = false;
  for (const ev of events) {
    if (ev.done) continue;
    assert.ok(ev.json, `${where}: a chunk that is not JSON: ${ev.raw}`);
    for (const ch of ev.json.choices) {
      assert.ok(!ended, `${where}: a chunk after finish_reason`);
      const d = ch.delta;
      if (d.role) out.role = d.role;
      for (const k of ["reasoning", "reasoning_content", "content"]) if (typeof d[k] === "string") out[k] += d[k];
      for (const t of d.tool_calls ?? []) {
        if (t.index === out.calls.length) {
          assert.match(t.id ?? "", /^chatcmpl-tool-[0-9a-f]{32}$/, `${where}: a call's first delta has no id`);
          assert.equal(t.type, "function", `${where}: first delta type`);
          assert.equal(typeof t.function.name, "string", `${where}: first delta has no name`);
          out.calls.push({ id: t.id, type: t.type, name: t.function.name, arguments: t.function.arguments ?? "" });
        } else {
          assert.ok(t.index < out.calls.length, `${where}: delta for call ${t.index} before its first piece`);
          assert.equal(t.id, undefined, `${where}: a later piece repeats the id`);
          assert.equal(t.function.name, undefined, `${where}: a later piece repeats the name`);
          out.calls[t.index].arguments += t.function.arguments ?? "";
        }
      }
      if (ch.finish_reason) { out.finish = ch.finish_reason; ended = true; }
    }
  }
  return out;
}

/** Non-streaming and raw-streaming the same request agree; returns the non-streaming choice. */
async function both(body, where) {
  const r = await client.chat.completions.create({ model, ...body });
  const ch = r.choices[0];
  const m = ch.message;
  const s = await streamPost(port, "/v1/chat/completions", { model, ...body, stream: true });
  assert.equal(s.status, 200, `${where}: stream status ${s.status}: ${s.text.slice(0, 300)}`);
  assert.ok(s.done, `${where}: stream without [DONE]`);
  const j = joinStream(s.events, where);
  assert.equal(j.reasoning, m.reasoning ?? "", `${where}: streamed reasoning`);
  assert.equal(j.reasoning_content, m.reasoning_content ?? "", `${where}: streamed reasoning_content`);
  assert.equal(j.content, m.content ?? "", `${where}: streamed content`);
  assert.equal(j.finish, ch.finish_reason, `${where}: streamed finish_reason`);
  assert.deepEqual(j.calls.map((c) => [c.name, c.arguments]), (m.tool_calls ?? []).map((c) => [c.function.name, c.function.arguments]),
    `${where}: streamed calls`);
  return ch;
}

let call1 = null;
await C.check("turn 1: the tool call, reasoning split out, finish_reason tool_calls (streaming agrees)", async () => {
  const ch = await both({ messages: [user], tools: TOOLS, ...force(TURN1) }, "turn 1");
  const m = ch.message;
  assert.equal(ch.finish_reason, "tool_calls");
  assert.equal(m.tool_calls.length, 1);
  const args = judgeCall(m.tool_calls[0], "turn 1");
  assert.equal(m.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(args, { city: "Paris", unit: "c" });
  assert.equal(m.reasoning, "\nThe user wants the weather.\n");
  assert.equal(m.reasoning_content, m.reasoning);
  assert.ok(m.content === null || m.content.trim() === "", `content ${JSON.stringify(m.content)}`);
  call1 = m.tool_calls[0];
});

await C.check("turn 1 through the client's stream helper: the same call", async () => {
  const stream = client.chat.completions.stream({ model, messages: [user], tools: TOOLS, ...force(TURN1) });
  const r = await stream.finalChatCompletion();
  const ch = r.choices[0];
  assert.equal(ch.finish_reason, "tool_calls");
  assert.equal(ch.message.tool_calls.length, 1);
  assert.deepEqual(judgeCall(ch.message.tool_calls[0], "helper"), { city: "Paris", unit: "c" });
});

const turn2 = () => [user, { role: "assistant", content: null, tool_calls: [call1] },
  { role: "tool", tool_call_id: call1.id, content: '{"temp": 21}' }];
await C.check("turn 2: the prompt holds the call (arguments as an object) and the tool's result", async () => {
  const t = await post(port, "/tokenize", { model, messages: turn2(), tools: TOOLS, add_generation_prompt: true });
  assert.equal(t.status, 200, t.text);
  const d = await post(port, "/detokenize", { model, tokens: t.json.tokens });
  assert.equal(d.status, 200, d.text);
  const want = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>';
  assert.ok(d.json.prompt.includes(want), `no call in ${JSON.stringify(d.json.prompt)}`);
  assert.ok(d.json.prompt.includes('<tool_response>\n{"temp": 21}\n</tool_response>'), d.json.prompt);
  assert.ok(d.json.prompt.includes("tools: get_weather get_time"), d.json.prompt);
});

await C.check("turn 2: the final answer is content, no calls, finish_reason stop (streaming agrees)", async () => {
  const ch = await both({ messages: turn2(), tools: TOOLS, ...force(TURN2), max_tokens: 60 }, "turn 2");
  assert.equal(ch.finish_reason, "stop");
  assert.deepEqual(ch.message.tool_calls ?? [], []);
  assert.equal(ch.message.content, "\n\nIt is 21 C in Paris.");
  assert.equal(ch.message.reasoning, "\nok\n");
});

await C.check("two calls; parallel_tool_calls false keeps the first (streaming too)", async () => {
  const ch = await both({ messages: [user], tools: TOOLS, ...force(TWO_CALLS) }, "two calls");
  assert.deepEqual(ch.message.tool_calls.map((c) => c.function.name), ["get_weather", "get_time"]);
  ch.message.tool_calls.forEach((c, i) => judgeCall(c, `call ${i}`));
  assert.equal(ch.message.reasoning, null);
  const one = await both({ messages: [user], tools: TOOLS, parallel_tool_calls: false, ...force(TWO_CALLS) }, "first only");
  assert.deepEqual(one.message.tool_calls.map((c) => c.function.name), ["get_weather"]);
  assert.equal(one.finish_reason, "tool_calls");
});

await C.check("a malformed call is plain content (vLLM), never an error; finish_reason stop", async () => {
  const bad = '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>';
  const ch = await both({ messages: [user], tools: TOOLS, ...force(bad) }, "malformed");
  assert.equal(ch.message.content, bad);
  assert.deepEqual(ch.message.tool_calls ?? [], []);
  assert.equal(ch.finish_reason, "stop");
});

await C.check('tool_choice "none": the text is left alone (no parsing); no tools: the same', async () => {
  for (const extra of [{ tools: TOOLS, tool_choice: "none" }, {}]) {
    const ch = await both({ messages: [user], ...extra, ...force(CALL1) }, JSON.stringify(extra).slice(0, 30));
    assert.equal(ch.message.content, CALL1);
    assert.deepEqual(ch.message.tool_calls ?? [], []);
    assert.equal(ch.finish_reason, "stop");
  }
});

await C.check("include_reasoning false drops the reasoning; content without <think> is all content", async () => {
  const ch = await both({ messages: [user], include_reasoning: false, ...force(TURN2) }, "no reasoning");
  assert.equal(ch.message.reasoning, null);
  assert.equal(ch.message.content, "\n\nIt is 21 C in Paris.");
  const plain = await both({ messages: [user], ...force("Just text.") }, "plain");
  assert.equal(plain.message.content, "Just text.");
  assert.equal(plain.message.reasoning, null);
});

await C.check("n=2 and max_tokens cutting the call: every choice parsed on its own", async () => {
  const r = await client.chat.completions.create({ model, messages: [user], tools: TOOLS, ...force(TURN1), n: 2 });
  assert.equal(r.choices.length, 2);
  for (const ch of r.choices) assert.equal(ch.message.tool_calls[0].function.name, "get_weather");
  const cut = await both({ messages: [user], tools: TOOLS, ...force(TURN1), max_tokens: 40 }, "cut");
  assert.equal(cut.finish_reason, "length");
  assert.deepEqual(cut.message.tool_calls ?? [], []);
});

const bad400 = [
  ["duplicate tool names", { tools: [WEATHER, WEATHER] }, /Tool names must be unique: 'get_weather'/],
  ["parameters that are not a JSON Schema (type)",
    { tools: [{ type: "function", function: { name: "f", parameters: { type: "banana" } } }] }, /tool 'f' are not a JSON Schema: 'type'/],
  ["parameters that are not a JSON Schema (properties)",
    { tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: [] } } }] }, /'properties' is not an object/],
  ["a tool call whose arguments are not JSON",
    { tools: TOOLS, messages: [user, { role: "assistant", tool_calls: [{ id: "x", type: "function", function: { name: "get_weather", arguments: "{city" } }] }] },
    /arguments' is not valid JSON/],
];
for (const [name, body, re] of bad400) {
  await C.check(`400: ${name}`, async () => {
    const r = await post(port, "/v1/chat/completions", { model, messages: [user], max_tokens: 4, ...body });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, re);
    assert.equal(r.json.error.code, 400);
  });
}

// gpt-oss's harmony format (--tool-call-parser openai --reasoning-parser openai): the test model writes the
// markers as plain text (its vocabulary has no harmony tokens); the parsers read the text either way
await srv.stop();
const sh = await startServerOrExit(C, ["--chat-template", TEMPLATE, "--enable-auto-tool-choice", "--tool-call-parser", "openai",
  "--reasoning-parser", "openai"], { name: "harmony" });
{
  const H_CALL = "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary " +
    'to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}';
  const H_FINAL = "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>It is 21 C.";
  const hc = new OpenAI({ baseURL: `http://127.0.0.1:${sh.port}/v1`, apiKey: "x", maxRetries: 0, timeout: 120000 });
  const hboth = async (body, where) => {
    const r = await hc.chat.completions.create({ model, ...body });
    const s = await streamPost(sh.port, "/v1/chat/completions", { model, ...body, stream: true });
    const j = joinStream(s.events, where), m = r.choices[0].message;
    assert.equal(j.reasoning, m.reasoning ?? "", `${where}: streamed reasoning`);
    assert.equal(j.content, m.content ?? "", `${where}: streamed content`);
    assert.equal(j.finish, r.choices[0].finish_reason, `${where}: finish`);
    assert.deepEqual(j.calls.map((c) => [c.name, c.arguments]), (m.tool_calls ?? []).map((c) => [c.function.name, c.function.arguments]));
    return r.choices[0];
  };
  await C.check("harmony: a call on the commentary channel, reasoning from the analysis channel (streaming agrees)", async () => {
    const ch = await hboth({ messages: [user], tools: TOOLS, ...force(H_CALL) }, "harmony call");
    assert.equal(ch.finish_reason, "tool_calls");
    assert.equal(ch.message.tool_calls[0].function.name, "get_weather");
    assert.equal(ch.message.tool_calls[0].function.arguments, '{"city": "Paris"}');
    judgeCall(ch.message.tool_calls[0], "harmony");
    assert.equal(ch.message.reasoning, "Need the weather.");
    assert.equal(ch.message.content, null);
  });
  await C.check("harmony: the final channel is the content; without tools the reasoning parser alone splits it", async () => {
    for (const extra of [{ tools: TOOLS }, {}]) {
      const ch = await hboth({ messages: [user], ...extra, ...force(H_FINAL) }, "harmony final");
      assert.equal(ch.finish_reason, "stop");
      assert.equal(ch.message.content, "It is 21 C.");
      assert.equal(ch.message.reasoning, "Easy.");
      assert.deepEqual(ch.message.tool_calls ?? [], []);
    }
  });
}
await sh.stop();

// Qwen3-Coder's calls (--tool-call-parser qwen3_coder): vLLM converts each <parameter=...> value by its
// type in the request's tool schema, so the arguments come typed (integer, number, boolean, array, object)
const sq = await startServerOrExit(C, ["--chat-template", TEMPLATE, "--enable-auto-tool-choice", "--tool-call-parser", "qwen3_coder"],
  { name: "qwen3_coder" });
{
  const FORECAST = { type: "function", function: { name: "get_forecast", parameters: { type: "object", properties: {
    city: { type: "string" }, days: { type: "integer" }, temp: { type: "number" }, metric: { type: "boolean" },
    hours: { type: "array", items: { type: "integer" } }, opts: { type: "object" } }, required: ["city"] } } };
  const checkForecast = ajv.compile(FORECAST.function.parameters);
  const param = (k, v) => `<parameter=${k}>\n${v}\n</parameter>\n`;
  const Q_CALL = "Checking.\n<tool_call>\n<function=get_forecast>\n" + param("city", "Paris") + param("days", "3") +
    param("temp", "21.5") + param("metric", "true") + param("hours", "[6, 12]") + param("opts", '{"unit": "c"}') +
    "</function>\n</tool_call>";
  const Q_BAD = "Checking.\n<tool_call>\n<function=get_forecast\n</function>\n</tool_call>";
  const qc = new OpenAI({ baseURL: `http://127.0.0.1:${sq.port}/v1`, apiKey: "x", maxRetries: 0, timeout: 120000 });
  const qboth = async (body, where) => {
    const r = await qc.chat.completions.create({ model, ...body });
    const s = await streamPost(sq.port, "/v1/chat/completions", { model, ...body, stream: true });
    assert.equal(s.status, 200, `${where}: stream status ${s.status}`);
    const j = joinStream(s.events, where), m = r.choices[0].message;
    assert.equal(j.content, m.content ?? "", `${where}: streamed content`);
    assert.equal(j.finish, r.choices[0].finish_reason, `${where}: finish`);
    assert.deepEqual(j.calls.map((c) => [c.name, c.arguments]), (m.tool_calls ?? []).map((c) => [c.function.name, c.function.arguments]),
      `${where}: streamed calls`);
    return r.choices[0];
  };
  await C.check("qwen3_coder: a call's parameters typed by the tool schema, text before it as content (streaming agrees)", async () => {
    const ch = await qboth({ messages: [user], tools: [FORECAST], ...force(Q_CALL), max_tokens: 420 }, "qwen3_coder call");
    assert.equal(ch.finish_reason, "tool_calls");
    assert.equal(ch.message.content, "Checking.\n");
    const call = ch.message.tool_calls[0];
    assert.match(call.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
    assert.equal(call.function.name, "get_forecast");
    assert.equal(call.function.arguments,
      '{"city": "Paris", "days": 3, "temp": 21.5, "metric": true, "hours": [6, 12], "opts": {"unit": "c"}}');
    const v = JSON.parse(call.function.arguments);
    assert.ok(checkForecast(v), ajv.errorsText(checkForecast.errors));
  });
  await C.check("qwen3_coder: a malformed call (a function name without '>') is plain content", async () => {
    const ch = await qboth({ messages: [user], tools: [FORECAST], ...force(Q_BAD), max_tokens: 420 }, "qwen3_coder malformed");
    assert.equal(ch.finish_reason, "stop");
    assert.equal(ch.message.content, Q_BAD);
    assert.deepEqual(ch.message.tool_calls ?? [], []);
  });
}
await sq.stop();

// structured output with a reasoning parser (vLLM: the grammar applies after the reasoning): a copy of the
// test model whose vocabulary has "<think>" (287) and "</think>" (288) as tokens
{
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vllmc-think-"));
  for (const f of fs.readdirSync(getModelDir())) fs.copyFileSync(path.join(getModelDir(), f), path.join(dir, f));
  const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  for (const [id, content] of [[287, "<think>"], [288, "</think>"]])
    tj.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tj));
  const SCHEMA = { type: "object", properties: { n: { type: "integer", minimum: 0, maximum: 99 } }, required: ["n"],
    additionalProperties: false };
  const valid = ajv.compile(SCHEMA);
  const rf = { response_format: { type: "json_schema", json_schema: { name: "n", schema: SCHEMA } }, max_tokens: 40, seed: 3 };
  const tmpl = (tail) => `{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n${tail}`;
  const cases = [
    // R1-style: the prompt opens the reasoning; "</think>" forced first (logit_bias), then the schema rules
    ["deepseek_r1", "<think>\n", { logit_bias: { 288: 100 } }, (m) => m.reasoning === ""],
    // Qwen3 without thinking: the prompt holds the empty pair, so the schema rules from the first token
    ["qwen3", "<think>\n\n</think>\n\n", {}, (m) => m.reasoning === null],
  ];
  for (const [parser, tail, extra, reasoningOk] of cases) {
    const st = await startServerOrExit(C, ["--chat-template", tmpl(tail), "--reasoning-parser", parser], { model: dir, name: parser });
    await C.check(`structured output after the reasoning (${parser}): the content follows the schema`, async () => {
      const r = await post(st.port, "/v1/chat/completions", { model, messages: [user], ...rf, ...extra });
      assert.equal(r.status, 200, r.text);
      const m = r.json.choices[0].message;
      assert.ok(reasoningOk(m), `reasoning ${JSON.stringify(m.reasoning)}`);
      assert.equal(r.json.choices[0].finish_reason, "stop", JSON.stringify(m));
      const v = JSON.parse(m.content);
      assert.ok(valid(v), `${m.content}: ${ajv.errorsText(valid.errors)}`);
    });
    await st.stop();
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

// --chat-template-content-format: a template that loops over content parts
const PARTS = "{% for m in messages %}[{% for p in m['content'] %}<{{ p.type }}:{{ p.text }}>{% endfor %}]{% endfor %}";
for (const [flags, want] of [[[], "auto"], [["--chat-template-content-format", "openai"], "openai"]]) {
  const s2 = await startServerOrExit(C, ["--chat-template", PARTS, ...flags], { name: `parts-${want}` });
  await C.check(`--chat-template-content-format ${want}: content reaches the template as text parts`, async () => {
    const t = await post(s2.port, "/tokenize", { model, messages: [{ role: "user", content: "hi" },
      { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }], add_special_tokens: false });
    assert.equal(t.status, 200, t.text);
    const d = await post(s2.port, "/detokenize", { model, tokens: t.json.tokens });
    assert.equal(d.json.prompt, "[<text:hi>][<text:a><text:b>]");
  });
  await s2.stop();
}
const s3 = await startServerOrExit(C, ["--chat-template", "{% for m in messages %}({{ m.content }}){% endfor %}",
  "--chat-template-content-format", "string"], { name: "string" });
await C.check("--chat-template-content-format string: parts joined by newlines", async () => {
  const t = await post(s3.port, "/tokenize", { model, messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }],
    add_special_tokens: false });
  const d = await post(s3.port, "/detokenize", { model, tokens: t.json.tokens });
  assert.equal(d.json.prompt, "(a\nb)");
});
await s3.stop();

await C.check("CLI: --enable-auto-tool-choice needs --tool-call-parser; unknown parser names are refused", () => {
  const cases = [
    [["--enable-auto-tool-choice"], /--enable-auto-tool-choice requires --tool-call-parser/],
    [["--enable-auto-tool-choice", "--tool-call-parser", "nope"], /invalid tool call parser: nope \(chose from \{ hermes/],
    [["--reasoning-parser", "nope"], /--reasoning-parser: invalid choice: 'nope' \(choose from deepseek_r1, qwen3/],
    [["--chat-template-content-format", "xml"], /invalid choice: 'xml'/],
  ];
  for (const [args, re] of cases) {
    const r = spawnSync(VLLMC, ["serve", getModelDir(), "--port", "0", ...args], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 2, `${args.join(" ")}: exit ${r.status} ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

C.finish();
