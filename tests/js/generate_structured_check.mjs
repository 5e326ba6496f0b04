// Judges `vllmc generate --json` output (stdin, one JSON line per prompt) against the constraint each
// prompt had, with references nobody here wrote: ajv (JSON Schema draft 2020-12 + ajv-formats) for
// JSON, the JavaScript RegExp engine (a full match) for regexes and GBNF grammars (given as an equal
// regex), equality for choices. Every completion that ended with finish_reason "stop" must be valid;
// one cut by max_tokens ("length") must be a prefix of a valid output where that can be told (choices).
//
// Usage: node tests/js/generate_structured_check.mjs PLAN < generate-output.jsonl
//   PLAN: a JSON file holding one judge, applied to every line, or an array of judges, one per line:
//   {"schema": {...}} | {"object": true} | {"regex": "..."} | {"choice": ["a", "b"]} | {"none": true}
//   plus "compact": true (no whitespace outside JSON strings: --disable-any-whitespace).
// Prints how many completions stopped and were valid; exits 1 naming the first invalid one, or when
// no completion ended with "stop" (nothing was checked).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.resolve(path.dirname(new URL(import.meta.url).pathname), "package.json"));
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats");
const ajv = new Ajv2020({ strict: false });
addFormats(ajv);

function die(msg) {
  console.error(`generate_structured_check: ${msg}`);
  process.exit(1);
}

// whitespace outside JSON strings (compact JSON has none)
function hasLooseWhitespace(t) {
  let inStr = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (inStr) {
      if (c === "\\") i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (" \t\n\r".includes(c)) return true;
  }
  return false;
}

function judge(j, t) {
  if (j.none) return null;
  if (j.regex !== undefined) return new RegExp(`^(?:${j.regex})$`, "u").test(t) ? null : "no full match";
  if (j.choice) return j.choice.includes(t) ? null : "not one of the choices";
  let v;
  try {
    v = JSON.parse(t);
  } catch {
    return "not JSON";
  }
  if (j.compact && hasLooseWhitespace(t)) return "whitespace outside strings";
  if (j.object) return v && typeof v === "object" && !Array.isArray(v) ? null : "not a JSON object";
  const validate = j._validate ?? (j._validate = ajv.compile(j.schema));
  return validate(v) ? null : ajv.errorsText(validate.errors);
}

const isPrefix = (j, t) => (j.choice ? j.choice.some((c) => c.startsWith(t)) : true);

if (process.argv.length !== 3) die("usage: node tests/js/generate_structured_check.mjs PLAN < output.jsonl");
const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const lines = fs.readFileSync(0, "utf8").split("\n").filter((l) => l.trim());
if (Array.isArray(plan) && plan.length !== lines.length) die(`${lines.length} output lines for ${plan.length} judges`);
let stops = 0, lengths = 0;
lines.forEach((line, i) => {
  const j = Array.isArray(plan) ? plan[i] : plan;
  let r;
  try {
    r = JSON.parse(line);
  } catch {
    die(`line ${i + 1} is not JSON: ${line.slice(0, 200)}`);
  }
  const outs = r.outputs ?? [r];
  for (const c of outs) {
    if (typeof c.text !== "string") die(`line ${i + 1}: no "text"`);
    if (c.finish_reason === "stop") {
      const bad = judge(j, c.text);
      if (bad) die(`line ${i + 1}: ${JSON.stringify(c.text)}: ${bad}`);
      if (!j.none) stops++;
    } else if (c.finish_reason === "length") {
      if (!j.none && !isPrefix(j, c.text)) die(`line ${i + 1}: a cut output is not a prefix: ${JSON.stringify(c.text)}`);
      lengths++;
    } else {
      die(`line ${i + 1}: finish_reason ${c.finish_reason}: ${JSON.stringify(c.text)}`);
    }
  }
});
if (stops === 0) die('no completion ended with "stop" (nothing checked)');
console.log(`${stops} outputs ended with stop and were valid, ${lengths} hit max_tokens`);
