// Differential test: vllmc's tokenizer against @huggingface/tokenizers (the JS
// port of HF `tokenizers`) on the real tokenizer.json / tokenizer_config.json
// of every @lenml/tokenizer-* package installed in tests/js/node_modules.
//
// For each tokenizer: a fixed corpus plus TOK_DIFF_N random strings (seeded
// PRNG) are encoded with and without special tokens; the reference encodings
// and random id lists are decoded with and without skip_special_tokens, both
// with `vllmc detokenize` (full decode, transformers' clean_up per config) and
// with `--stream` (tok_stream pieces concatenated, compared with the decode
// without clean-up). vllmc runs in its --jsonl batch mode, one process per
// (tokenizer, mode).
//
// Where the JS port is known to differ from Rust `tokenizers` (what
// transformers and vLLM use), the reference is patched to Rust's behaviour
// below, each patch citing the Rust code; checks are never skipped.
//
// Usage: node tests/js/tok_diff.mjs [name | DIR ...]   (run from the repository root;
//        a DIR holds tokenizer.json and optionally tokenizer_config.json)
// Env: VLLMC (default build/vllmc), TOK_DIFF_N (random strings per tokenizer,
//      default 1500), TOK_DIFF_SEED.
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as T from "@huggingface/tokenizers";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VLLMC = process.env.VLLMC || "build/vllmc";
const N_RANDOM = parseInt(process.env.TOK_DIFF_N || "1500", 10);
const SEED = parseInt(process.env.TOK_DIFF_SEED || "20250601", 10);
const LENML = path.join(HERE, "node_modules", "@lenml");

// ---------------------------------------------------------------------------
// Reference patches (JS port -> Rust tokenizers semantics)

const FFFD = "\uFFFD";
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const utf8strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ByteFallback: Rust (decoders/byte_fallback.rs) turns a run of <0xXX> tokens
// that is not valid UTF-8 into one U+FFFD *per byte*; the JS port decodes the
// run leniently (one U+FFFD per maximal invalid subpart, valid chars kept).
T.ByteFallbackDecoder.prototype.decode_chain = function (tokens) {
  const out = [];
  let run = [];
  const flush = () => {
    if (!run.length) return;
    try {
      out.push(utf8strict.decode(Uint8Array.from(run)));
    } catch {
      for (let i = 0; i < run.length; i++) out.push(FFFD);
    }
    run = [];
  };
  for (const t of tokens) {
    // token.len() == 6 (bytes) && starts_with("<0x") && ends_with('>') && u8::from_str_radix(&t[3..5], 16)
    const m = /^<0x(\+[0-9a-fA-F]|[0-9a-fA-F]{2})>$/.exec(t);
    if (m) run.push(parseInt(m[1], 16));
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
};

// ByteLevel: Rust (pre_tokenizers/byte_level.rs, Decoder impl) maps every
// token's chars back to bytes (a token with a char outside the byte alphabet
// contributes its raw UTF-8) and runs String::from_utf8_lossy once over all of
// them; the JS port emits added tokens raw and decodes the runs between them
// separately. (Same text for every added token made of ASCII, but not in general.)
const BYTE_OF = (() => {
  const m = new Map();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    m.set(String.fromCodePoint(printable ? b : 256 + n++), b);
  }
  return m;
})();
const enc = new TextEncoder();
T.ByteLevelDecoder.prototype.decode_chain = function (tokens) {
  const bytes = [];
  for (const t of tokens) {
    const chars = [...t];
    if (chars.every((c) => BYTE_OF.has(c))) for (const c of chars) bytes.push(BYTE_OF.get(c));
    else for (const b of enc.encode(t)) bytes.push(b);
  }
  return [utf8.decode(Uint8Array.from(bytes))];
};

// ByteLevel pre-tokenizer regex: Rust compiles GPT-2's pattern with Oniguruma,
// whose \s is Unicode White_Space (has U+0085, lacks U+FEFF); the JS port uses
// a native JS regex whose \s is the other way round (patterns from
// tokenizer.json are translated, this built-in one is not).
{
  const W = "\\p{White_Space}";
  const fixed = new RegExp(
    `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${W}\\p{L}\\p{N}]+|${W}+(?!\\P{White_Space})|${W}+`, "gu");
  const orig = T.ByteLevelPreTokenizer.prototype.pre_tokenize_text;
  T.ByteLevelPreTokenizer.prototype.pre_tokenize_text = function (text, options) {
    this.pattern = fixed;
    return orig.call(this, text, options);
  };
}

// Metaspace decoder: Rust drops *every* replacement char of the first token
// (unless prepend_scheme is "never"); the JS port strips one leading space.
T.MetaspaceDecoder.prototype.decode_chain = function (tokens) {
  const never = this.config.prepend_scheme === "never" || this.config.add_prefix_space === false;
  return tokens.map((t, i) => [...t].map((c) => (c === this.replacement ? (i === 0 && !never ? "" : " ") : c)).join(""));
};

// ---------------------------------------------------------------------------
// Deterministic random strings

function mulberry32(a) {
  return function () {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Code points whose properties are the same in PCRE2 10.42 (Unicode 14), utf8proc
// (15.0), Oniguruma/Rust (15.x) and Node (17.0): blocks complete before Unicode 14.
const RANGES = [
  [0x20, 0x7e], [0xa0, 0xff], [0x100, 0x24f], [0x250, 0x2ff], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x531, 0x556], [0x591, 0x5f4], [0x600, 0x6ff], [0x900, 0x97f], [0xe01, 0xe5b], [0x10a0, 0x10ff],
  [0x1100, 0x11ff], [0x1e00, 0x1eff], [0x2000, 0x206f], [0x20a0, 0x20bf], [0x2100, 0x214f], [0x2150, 0x218b],
  [0x2190, 0x22ff], [0x2460, 0x24ff], [0x2500, 0x257f], [0x3000, 0x303f], [0x3041, 0x3096], [0x30a1, 0x30fa],
  [0x4e00, 0x9fa5], [0xac00, 0xd7a3], [0xff01, 0xffdc], [0xfffd, 0xfffd],
];
const WORDS = ("the of and to in is was he for it with as his on be at by I had not are but from or have an they which " +
  "one you were her all she there would their we him been has when who will more no if out so said what up its about " +
  "Hello World Python JavaScript naïve café résumé Zürich São Paulo coöperate İstanbul ΣΊΣΥΦΟΣ Straße").split(" ");
const PIECES = [
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "’s", "n't", "...", "—", "–", "«", "»", "“", "”", "„",
  "http://example.com/a?b=c&d", "x = f(y) * 2;", "{\"k\": [1, 2]}", "<div>", "</div>", "#include <stdio.h>",
  "🦙", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "❤️", "☕", "😀😃😄", "1️⃣", "e\u0301", "a\u0308", "n\u0303",
  "\u0915\u094d\u0937", "\u1100\u1161\u11a8", "ﬁ", "Ⅻ", "½", "²", "①", "㎡", "ｈｅｌｌｏ",
  "<|im_start|", "<|im_end", "<s", "</s", "<bos", "<|endoftext", "[INST", "<unused1", "<|eot_id|", "<0x41>", "▁", "▁▁",
  "Ġ", "Ċ", "\u200b", "\u200d", "\ufeff", "\u180e", "\u2028", "\u00ad",
];
const SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\u00a0", "\u3000", "\u2009", "\u202f", "\u0085", "\f", "\v"];

function randCp(r) {
  const [a, b] = RANGES[Math.floor(r() * RANGES.length)];
  return String.fromCodePoint(a + Math.floor(r() * (b - a + 1)));
}

function randString(r, specials) {
  const parts = [];
  const n = 1 + Math.floor(r() * (r() < 0.1 ? 120 : 20));
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.3) parts.push(WORDS[Math.floor(r() * WORDS.length)]);
    else if (k < 0.45) parts.push(SPACES[Math.floor(r() * SPACES.length)]);
    else if (k < 0.6) parts.push(PIECES[Math.floor(r() * PIECES.length)]);
    else if (k < 0.7) parts.push(String(Math.floor(r() * 10 ** Math.floor(r() * 9))));
    else if (k < 0.77 && specials.length) parts.push(specials[Math.floor(r() * specials.length)]);
    else if (k < 0.8) parts.push(String.fromCharCode(Math.floor(r() * 32)) + (r() < 0.3 ? "\x7f" : ""));
    else if (k < 0.83) parts.push(randCp(r).repeat(1 + Math.floor(r() * 30)));
    else {
      let s = "";
      const m = 1 + Math.floor(r() * 12);
      for (let j = 0; j < m; j++) s += randCp(r);
      parts.push(s);
    }
  }
  return parts.join(r() < 0.5 ? "" : " ");
}

const FIXED = [
  "", " ", "  ", "\n", "\n\n\n", "\t\t", "Hello, world!", "Hello world", " Hello", "Hello ", "  leading and   multiple   spaces  ",
  "Once upon a time, there was a little girl named Lily.", "numbers: 0 7 42 123 4567 3.14159 1,000,000 1234567890",
  "Unicode: héllo naïve café — “quotes” … 日本語 中文 한국어 Привет", "Emoji: 🦙🚀👍🏽 👨‍👩‍👧‍👦 🇯🇵",
  "code:\n\tdef f(x):\n\t\treturn x*2\n", "line1\nline2\r\nline3\n\n\nend", "don't I'll we've they're it's I'M YOU'RE",
  "<s>[INST] not special? </s> <|im_start|>user", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "<bos><start_of_turn>user\nhi<end_of_turn>",
  "e\u0301 vs é (NFC)", "ﬁ ﬂ Ⅻ ½ ² ㎡ ｈｅｌｌｏ (NFKC-able)", "\u0000\u0001\u001f\u007f\u0085", "a\u200bb\u200dc\ufeffd",
  "x".repeat(300), "ab ".repeat(200), "🦙".repeat(50), "日本".repeat(100), " ".repeat(100) + "x", "\n".repeat(40),
  "The quick brown fox jumps over the lazy dog. ".repeat(30),
  "مرحبا بالعالم — שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Ελληνικά ΣΊΣΥΦΟΣ", "İstanbul ıi", "Straße STRASSE",
];

// ---------------------------------------------------------------------------

function runVllmc(args, lines) {
  const r = spawnSync(VLLMC, args, { input: lines.join("\n") + "\n", maxBuffer: 1 << 30 });
  if (r.error) throw new Error(`cannot run ${VLLMC}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${VLLMC} ${args.join(" ")} failed (${r.status}): ${r.stderr.toString().slice(0, 500)}`);
  const out = r.stdout.toString().split("\n");
  out.pop();
  if (out.length !== lines.length) throw new Error(`${VLLMC} ${args.join(" ")}: ${out.length} lines for ${lines.length}`);
  return out.map((l) => JSON.parse(l));
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function testTokenizer(name) {
  // a bare name is an installed @lenml package; anything with a '/' is a directory
  const dir = name.includes("/") ? name : path.join(LENML, `tokenizer-${name}`, "models");
  const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const tc = fs.existsSync(path.join(dir, "tokenizer_config.json"))
    ? JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"))
    : {};
  // transformers 5 builds LlamaTokenizer's pipeline itself (no normalizer, a
  // Metaspace pre-tokenizer): mirror that here, as src/tokenizer/config.c does
  // (apply_llama_pipeline; checked against transformers in hf_golden.mjs).
  const llama = ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast"];
  const n = tj.normalizer;
  if (tc && llama.includes(tc.tokenizer_class) && !tj.pre_tokenizer && n && n.type === "Sequence" &&
      n.normalizers.length === 2 && n.normalizers[0].type === "Prepend" && n.normalizers[0].prepend === "\u2581" &&
      n.normalizers[1].type === "Replace" && n.normalizers[1].content === "\u2581") {
    tj.normalizer = null;
    tj.pre_tokenizer = { type: "Metaspace", replacement: "\u2581", prepend_scheme: tc.legacy === false ? "first" : "always", split: false };
  }
  // transformers registers every special-token attribute (config keys, and
  // GemmaTokenizer's default mask_token "<mask>") as a special added token,
  // also one tokenizer.json lists as normal; src/tokenizer/config.c does too.
  const attrs = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
    .map((k) => (tc && typeof tc[k] === "object" && tc[k] ? tc[k].content : tc && tc[k])).filter((v) => typeof v === "string");
  if (tc && /^GemmaTokenizer(Fast)?$/.test(tc.tokenizer_class || "") && tc.mask_token === undefined) attrs.push("<mask>");
  for (const a of tj.added_tokens) if (attrs.includes(a.content)) a.special = true;
  const ref = new T.Tokenizer(tj, tc);
  // transformers defaults clean_up_tokenization_spaces to False when absent; the JS port to true
  const cleanup = tc.clean_up_tokenization_spaces === true;
  const added = tj.added_tokens.map((a) => a.content);
  const specials = added.slice(0, 40).concat(added.filter((_, i) => i % 97 === 0));

  let seed = SEED;
  for (const ch of name) seed = (Math.imul(seed, 31) + ch.charCodeAt(0)) | 0;
  const r = mulberry32(seed);
  const texts = FIXED.concat(added.slice(0, 8).map((a) => `x${a}y ${a}`));
  for (let i = 0; i < N_RANDOM; i++) texts.push(randString(r, specials));

  const fails = [];
  const fail = (what, input, want, got) => fails.push({ what, input, want, got });

  // encode
  const refIds = {};
  for (const special of [true, false]) {
    const got = runVllmc(["tokenize", dir, "--jsonl"].concat(special ? [] : ["--no-special"]), texts.map((t) => JSON.stringify(t)));
    refIds[special] = texts.map((t) => ref.encode(t, { add_special_tokens: special }).ids);
    texts.forEach((t, i) => {
      if (!same(refIds[special][i], got[i])) fail(`encode special=${special}`, t, refIds[special][i], got[i]);
    });
  }

  // decode: reference encodings and random id lists
  const vocab = ref.model.vocab;
  const ids = [];
  for (let i = 0; i < vocab.length; i++) if (vocab[i] !== undefined) ids.push(i);
  const byteIds = ids.filter((i) => /^<0x[0-9A-F]{2}>$/.test(vocab[i]));
  const addedIds = tj.added_tokens.map((a) => a.id).filter((i) => vocab[i] !== undefined);
  const lists = refIds[true].filter((l) => l.length);
  for (let i = 0; i < Math.max(300, N_RANDOM / 3); i++) {
    const n = 1 + Math.floor(r() * 40);
    const l = [];
    for (let j = 0; j < n; j++) {
      const k = r();
      if (k < 0.25 && byteIds.length) l.push(byteIds[Math.floor(r() * byteIds.length)]);
      else if (k < 0.35 && addedIds.length) l.push(addedIds[Math.floor(r() * addedIds.length)]);
      else l.push(ids[Math.floor(r() * ids.length)]);
    }
    lists.push(l);
  }
  // byte-level tokenizers: split multi-byte characters across tokens
  for (const t of ["日本語🦙é", "👨‍👩‍👧‍👦x", "한국어 text"]) {
    const l = ref.encode(t, { add_special_tokens: false }).ids;
    if (l.length) lists.push(l, l.slice(0, -1), l.slice(1));
  }
  const lines = lists.map((l) => JSON.stringify(l));
  for (const skip of [false, true]) {
    const flag = skip ? ["--skip-special"] : [];
    const full = runVllmc(["detokenize", dir, "--jsonl"].concat(flag), lines);
    const stream = runVllmc(["detokenize", dir, "--jsonl", "--stream"].concat(flag), lines);
    lists.forEach((l, i) => {
      const want = ref.decode(l, { skip_special_tokens: skip, clean_up_tokenization_spaces: cleanup });
      if (want !== full[i]) fail(`decode skip_special=${skip}`, l, want, full[i]);
      const raw = ref.decode(l, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
      if (raw !== stream[i]) fail(`stream skip_special=${skip}`, l, raw, stream[i]);
    });
  }
  const checks = texts.length * 2 + lists.length * 4;
  return { name, checks, texts: texts.length, lists: lists.length, fails };
}

// ---------------------------------------------------------------------------

if (!fs.existsSync(LENML)) {
  console.error(`tok_diff: ${LENML} is missing: run 'npm ci' in tests/js`);
  process.exit(1);
}
let names = process.argv.slice(2);
if (!names.length)
  names = fs
    .readdirSync(LENML)
    .filter((d) => d.startsWith("tokenizer-") && fs.existsSync(path.join(LENML, d, "models", "tokenizer.json")))
    .map((d) => d.slice("tokenizer-".length))
    .sort();
if (!names.length) {
  console.error("tok_diff: no @lenml/tokenizer-* packages with models/tokenizer.json found");
  process.exit(1);
}
let failed = 0;
for (const name of names) {
  const t0 = Date.now();
  const res = testTokenizer(name);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (!res.fails.length) {
    console.log(`  ok: ${name}: ${res.checks} checks (${res.texts} strings, ${res.lists} id lists) in ${secs}s`);
    continue;
  }
  failed++;
  console.log(`  FAIL: ${name}: ${res.fails.length} of ${res.checks} checks differ (${secs}s)`);
  for (const f of res.fails.slice(0, 5))
    console.log(`    ${f.what}: input ${JSON.stringify(f.input).slice(0, 300)}\n      want ${JSON.stringify(f.want).slice(0, 300)}\n      got  ${JSON.stringify(f.got).slice(0, 300)}`);
}
process.exit(failed ? 1 : 0);
