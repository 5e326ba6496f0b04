// Differential test of vllmc's chat templates against @huggingface/jinja (the JS port of Jinja that
// transformers.js uses): every template of tmpl_cases.mjs x every conversation x
// add_generation_prompt false/true is rendered by both and compared byte for byte. vllmc runs as a
// black box: `vllmc chat-template DIR --jsonl`, one process per template. When a render fails, both
// must fail, and a raise_exception message must be the same.
//
//   node tests/js/tmpl_diff.mjs [path/to/vllmc] [--verbose]
//   node tests/js/tmpl_diff.mjs [path/to/vllmc] --python         also compare every case with Python
//                                                                jinja2 in transformers' environment
//   node tests/js/tmpl_diff.mjs --update-known                    rewrite tmpl_known.mjs (needs
//                                                                python3 with jinja2 >= 3.1)
//
// The reference is Python jinja2 as transformers configures it; @huggingface/jinja 0.5.11 departs
// from it in places. Cases where the two disagree are pinned in tmpl_known.mjs to the Python result
// (made by --update-known), with the reason, and vllmc is checked against that instead. The
// departures these conversations hit:
//   - list message content: JS concatenates lists to strings as JSON (Python: TypeError) and cannot
//     |trim a list (Python: the list's repr);
//   - None content: JS cannot filter null (Python: "None");
//   - selectattr(attr, "undefined"): JS drops items that lack the attribute (Python tests them);
//   - `x|tojson|safe` is a Markup in Python, and `str + Markup` HTML-escapes the str side (the
//     mistral-common tool-call templates really render &#34; in transformers); JS has no Markup.
// Others that these conversations avoid: str.strip/lstrip/rstrip ignore their chars argument
// (Qwen3's .strip('\n')); None prints as "" and booleans as true/false (Python: None, True/False);
// lists/dicts print as JSON (Python: repr); tojson writes 1.0 as 1; length/indexing count UTF-16
// units; trim uses JS whitespace; a `set` inside a for loop persists across iterations (jinja2
// starts every iteration afresh); {% generation %} tags are stripped by a regex.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Template } from "@huggingface/jinja";
import { CONVERSATIONS, REPO, loadTemplates, requestOf } from "./tmpl_cases.mjs";
import { KNOWN } from "./tmpl_known.mjs";

const args = process.argv.slice(2);
const verbose = args.includes("--verbose");
const withPython = args.includes("--python");
const updateKnown = args.includes("--update-known");
const vllmc = path.resolve(args.find((x) => !x.startsWith("--")) || path.join(REPO, "build", "vllmc"));

// transformers' environment (utils/chat_template_utils.py), fed the same requests as vllmc --jsonl.
const PYTHON_ORACLE = String.raw`
import json, sys
from datetime import datetime
import jinja2, jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
class AssistantTracker(jinja2.ext.Extension):
    tags = {"generation"}
    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_gen"), [], [], body).set_lineno(lineno)
    def _gen(self, caller):
        return caller()
def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: datetime.now().strftime(f)
spec = json.loads(sys.stdin.readline())
try:
    tpl, perr = env.from_string(spec["source"]), None
except Exception as e:
    tpl, perr = None, "%s: %s" % (type(e).__name__, e)
for line in sys.stdin:
    req = json.loads(line)
    if tpl is None:
        print(json.dumps({"error": perr})); continue
    kw = {k: spec[k] for k in ("bos_token", "eos_token") if spec.get(k) is not None}
    kw.update(req.get("chat_template_kwargs") or {})
    try:
        out = tpl.render(messages=req["messages"], tools=req.get("tools"), documents=req.get("documents"),
                         add_generation_prompt=req.get("add_generation_prompt", False), **kw)
        print(json.dumps({"text": out}))
    except jinja2.exceptions.TemplateError as e:
        print(json.dumps({"error": str(e.message if hasattr(e, "message") and e.message else e), "raised": type(e) is jinja2.exceptions.TemplateError}))
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
`;

function renderJs(tpl, t, req) {
  const vars = { messages: req.messages, tools: req.tools ?? null, documents: null,
                 add_generation_prompt: req.add_generation_prompt };
  if (t.bos !== null) vars.bos_token = t.bos;
  if (t.eos !== null) vars.eos_token = t.eos;
  Object.assign(vars, req.chat_template_kwargs);
  try {
    return { text: tpl.render(vars) };
  } catch (e) {
    return { error: String(e.message || e) };
  }
}

function renderPython(t, jobs) {
  const input = JSON.stringify({ source: t.source, bos_token: t.bos, eos_token: t.eos }) + "\n" +
                jobs.map((j) => JSON.stringify(j.req)).join("\n") + "\n";
  const res = spawnSync("python3", ["-c", PYTHON_ORACLE], { input, encoding: "utf8", maxBuffer: 1 << 28 });
  const lines = (res.stdout || "").split("\n").filter((x) => x.length);
  if (res.status !== 0 || lines.length !== jobs.length)
    throw new Error(`python3 jinja2 oracle failed for ${t.name} (needs python3 with jinja2 >= 3.1): ${res.stderr}`);
  return lines.map((l) => JSON.parse(l));
}

// Why @huggingface/jinja and jinja2 disagree on a case (for tmpl_known.mjs).
function reasonFor(t, conv, js, py) {
  if (conv.name === "content_parts")
    return "list content: @huggingface/jinja joins lists into strings as JSON; Python raises TypeError or prints repr";
  if (conv.name === "tool_call_null_content")
    return "None content: @huggingface/jinja cannot filter null; Python's str(None) is 'None'";
  if ("text" in py && py.text.includes("&#34;"))
    return "x|tojson|safe is a Markup in Python and str + Markup HTML-escapes the str; @huggingface/jinja has no Markup";
  if (/selectattr\([^)]*"undefined"/.test(t.source))
    return "selectattr(attr, 'undefined'): @huggingface/jinja drops items lacking the attribute; jinja2 tests them";
  return `@huggingface/jinja: ${js.text !== undefined ? "renders" : js.error}; Python: ${py.text !== undefined ? "renders" : py.error}`;
}

// Same output, or both failing (with the same message when Python's failure is raise_exception).
function sameResult(js, py) {
  if ("text" in py) return "text" in js && js.text === py.text;
  return "error" in js && (!py.raised || js.error === py.error);
}

function modelDir(t, tmp) {
  if (t.dir) return t.dir;
  const dir = path.join(tmp, t.name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"),
                   JSON.stringify({ bos_token: t.bos, eos_token: t.eos, chat_template: t.source }));
  return dir;
}

const templates = loadTemplates();
const jobsOf = () => {
  const jobs = [];
  for (const conv of CONVERSATIONS) for (const agp of [false, true]) jobs.push({ conv, agp, req: requestOf(conv, agp) });
  return jobs;
};
const parsed = (t) => {
  try {
    return { tpl: new Template(t.source) };
  } catch (e) {
    return { error: String(e.message || e) };
  }
};

if (updateKnown) {
  const known = {};
  for (const t of templates) {
    const jobs = jobsOf(), p = parsed(t), py = renderPython(t, jobs);
    jobs.forEach((j, i) => {
      const js = p.error ? { error: p.error } : renderJs(p.tpl, t, j.req);
      if (sameResult(js, py[i])) return;
      known[`${t.name}/${j.conv.name}/${j.agp}`] = { reason: reasonFor(t, j.conv, js, py[i]), python: py[i] };
    });
  }
  const file = path.join(path.dirname(new URL(import.meta.url).pathname), "tmpl_known.mjs");
  fs.writeFileSync(file,
    "// Generated by `node tests/js/tmpl_diff.mjs --update-known` (Python jinja2 in transformers' environment):\n" +
    "// the cases of tmpl_cases.mjs where @huggingface/jinja differs from Python, with Python's result.\n" +
    "// vllmc is checked against `python` for these. Do not edit by hand.\n" +
    `export const KNOWN = ${JSON.stringify(known, null, 1)};\n`);
  console.log(`tmpl_diff: wrote ${Object.keys(known).length} known differences to ${file}`);
  process.exit(0);
}

if (!fs.existsSync(vllmc)) {
  console.error(`tmpl_diff: ${vllmc} not found (build it first)`);
  process.exit(2);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vllmc-tmpl-"));
let cases = 0, same = 0, bothFail = 0, known = 0, pySame = 0;
const failures = [];
try {
  for (const t of templates) {
    const p = parsed(t), jobs = jobsOf();
    const input = jobs.map((j) => JSON.stringify(j.req)).join("\n") + "\n";
    const res = spawnSync(vllmc, ["chat-template", modelDir(t, tmp), "--jsonl"], { input, encoding: "utf8", maxBuffer: 1 << 28 });
    const outLines = (res.stdout || "").split("\n").filter((x) => x.length);
    if (res.status !== 0 || outLines.length !== jobs.length) {
      failures.push(`${t.name}: vllmc exited with ${res.status} (signal ${res.signal}), ${outLines.length} lines for ${jobs.length} requests: ${res.stderr}`);
      continue;
    }
    const py = withPython ? renderPython(t, jobs) : null;
    jobs.forEach((j, i) => {
      cases++;
      const key = `${t.name}/${j.conv.name}/${j.agp}`;
      const c = JSON.parse(outLines[i]);
      let ref = p.error ? { error: p.error } : renderJs(p.tpl, t, j.req), refName = "@huggingface/jinja";
      if (KNOWN[key]) {
        known++;
        ref = KNOWN[key].python;
        refName = "python (known JS difference)";
      }
      if (py) {
        const cRaised = /raised an exception \(line \d+\): ([\s\S]*)$/.exec(c.error || "");
        if ("text" in py[i] ? c.text === py[i].text : "error" in c && (!py[i].raised || (cRaised && cRaised[1] === py[i].error))) pySame++;
        else failures.push(`${key}: differs from Python jinja2\n  python: ${JSON.stringify(py[i])}\n  vllmc:  ${JSON.stringify(c)}`);
      }
      if ("text" in ref && "text" in c) {
        if (ref.text === c.text) return void same++;
        failures.push(`${key}: output differs from ${refName}\n  ref:    ${JSON.stringify(ref.text)}\n  vllmc:  ${JSON.stringify(c.text)}`);
        return;
      }
      if ("error" in ref && "error" in c) {
        const raised = /raised an exception \(line \d+\): ([\s\S]*)$/.exec(c.error);
        const refRaised = KNOWN[key] ? ref.raised : t.source.includes(ref.error.slice(0, 40));
        if ((raised || refRaised) && (!raised || raised[1] !== ref.error)) {
          failures.push(`${key}: exception differs from ${refName}\n  ref:    ${ref.error}\n  vllmc:  ${c.error}`);
          return;
        }
        bothFail++;
        if (verbose) console.log(`  both fail: ${key}\n    ref:   ${ref.error}\n    vllmc: ${c.error}`);
        return;
      }
      failures.push(`${key}: ${"error" in ref ? `only ${refName} fails` : "only vllmc fails"}\n` +
                    `  ref:    ${JSON.stringify(ref.text ?? ref.error)}\n  vllmc:  ${JSON.stringify(c.text ?? c.error)}`);
    });
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
for (const f of failures) console.error("FAIL " + f);
console.log(`tmpl_diff: ${templates.length} templates, ${cases} renders: ${same} identical, ${bothFail} fail in both, ` +
            `${known} checked against Python (known @huggingface/jinja differences)` +
            (withPython ? `, ${pySame} equal to Python jinja2` : "") + `; ${failures.length} mismatches`);
process.exit(failures.length ? 1 : 0);
