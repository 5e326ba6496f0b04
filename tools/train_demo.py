#!/usr/bin/env python3
"""Train the project's demo model: a small Llama (~16 M parameters) on public-domain books.

Runs on the GPU machine (PyTorch, transformers 5.x, tokenizers, safetensors; no internet):

    python3 tools/train_demo.py --corpus ../shared/corpus/gutenberg_en.txt.gz --out /tmp/demo --minutes 3

(models/demo was made with --corpus .devcarry/gutenberg_en.txt.gz, a copy of that file carried to the GPU
machine; smoke test: --minutes 0.3 --data-mb 5 --chat-pool 600 --eval-every 6.) Three minutes is the choice:
validation loss bottoms out after ~10 epochs of this 18 M-token corpus (~2 minutes at 1.6 M tokens/s on one
H100); an 8-minute run (40 epochs) only overfitted (best validation loss 3.572 vs 3.559).

Steps:
  1. Read the corpus (Project Gutenberg English books, ../shared/corpus/gutenberg_en.txt.gz), unwrap the
     hard-wrapped lines into paragraphs, drop Project Gutenberg boilerplate, hold out ~1% of the paragraphs
     (every 100th block of 200) for validation.
  2. Train a byte-level BPE tokenizer (GPT-2 style, vocab 8192) with the `tokenizers` package on a third of
     the training paragraphs. Specials: <unk> 0, <s> 1 (BOS, added by the post-processor), </s> 2 (EOS),
     <|im_start|> 3, <|im_end|> 4. ChatML chat template with the BOS in front.
  3. Train LlamaForCausalLM (hidden 384, 8 layers, 6 heads, 2 KV heads, MLP 1024, tied embeddings) on
     512-token windows that start at a paragraph with <s>, plus ~20% synthetic chat windows (a book passage
     as the assistant's reply to "Continue the story." and similar requests, or the continuation of a
     passage the user gave), for a wall-clock budget (--minutes): AdamW, warmup then cosine decay over the
     time budget, bf16 autocast, torch.compile, residual dropout 0.1. The weights with the best validation loss
     are kept. Every window, plain or chat, starts with <s> at position 0, as served prompts do.
  4. Export an ordinary Hugging Face folder to --out (config.json, model.safetensors in bf16,
     generation_config.json, tokenizer.json, tokenizer_config.json with the chat template), reload it with
     transformers, generate samples at temperature 0.7 and write train_log.json (losses, sizes, timings,
     samples and the fraction of generated words that occur in the corpus).
"""
import argparse
import gzip
import json
import math
import os
import random
import re
import sys
import time

T_START = time.time()

SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
UNK, BOS, EOS, IM_START, IM_END = range(5)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# user requests of the synthetic chat samples; the reply is always a book passage
STORY_REQUESTS = [
    "Continue the story.",
    "Tell me a story.",
    "Write a passage from a novel.",
    "Write a paragraph.",
    "Tell me what happened next.",
    "Write something in the style of an old book.",
    "Go on.",
    "Describe the scene.",
]
CONTINUE_REQUESTS = ["Continue this text:", "Continue the story:", "What happens next?"]


def log(*a):
    print(f"[{time.time() - T_START:7.1f}s]", *a, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None, help="gzip text (default: .devcarry/ or ../shared/corpus/ gutenberg_en.txt.gz)")
    p.add_argument("--out", required=True, help="export folder (created; files written flat)")
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget (after compilation)")
    p.add_argument("--deadline-minutes", type=float, default=9.4,
                   help="stop training early so that the whole script ends by about this many minutes")
    p.add_argument("--data-mb", type=float, default=0, help="use only about this many MB of the corpus (0: all)")
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--ffn", type=int, default=1024)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=200, help="warmup steps")
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.1,
                   help="residual dropout on attention and MLP outputs while training (not part of the export)")
    p.add_argument("--chat-frac", type=float, default=0.2, help="fraction of each batch that is chat-shaped")
    p.add_argument("--chat-pool", type=int, default=8000, help="number of packed chat windows to precompute")
    p.add_argument("--eval-every", type=float, default=20.0, help="seconds of training between evaluations")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--seed", type=int, default=1234)
    return p.parse_args()


# ----------------------------------------------------------------------------------------------- data

BOILERPLATE = re.compile(r"gutenberg|https?://|www\.|ftp\.|\betext\b|e-?book", re.I)


def load_paragraphs(path, data_mb):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        text = f.read()
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    words = set(re.findall(r"[a-z]+", text.lower()))  # corpus vocabulary for the self-check
    paras = []
    for block in re.split(r"\n[ \t]*\n", text):
        # unwrap hard-wrapped lines; squeeze runs of spaces
        p = re.sub(r"[ ]{2,}", " ", " ".join(line.strip() for line in block.split("\n"))).strip()
        if not p or BOILERPLATE.search(p):
            continue
        paras.append(p)
    if data_mb > 0:
        keep = max(1, int(len(paras) * min(1.0, data_mb * 1e6 / len(text))))
        step = max(1, len(paras) // keep)
        paras = paras[::step]
    return paras, words, len(text)


def train_tokenizer(paras, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sample = paras[::3]
    tok.train_from_iterator(sample, trainer=trainer, length=len(sample))
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS)]
    )
    return tok


def write_tokenizer_files(tok, out, max_len):
    """tokenizer.json + tokenizer_config.json (chat template inline, no chat_template.jinja)."""
    tok.save(os.path.join(out, "tokenizer.json"))
    added = {
        str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                 "special": True}
        for i, s in enumerate(SPECIALS)
    }
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "</s>",
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_len,
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>",
                   "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]}, f, indent=2)
        f.write("\n")


def render_chat(messages, add_generation_prompt):
    """Python mirror of CHAT_TEMPLATE (checked against transformers' rendering)."""
    s = "<s>"
    for m in messages:
        s += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    if add_generation_prompt:
        s += "<|im_start|>assistant\n"
    return s


def build_stream(tok, paras, np):
    """Encode paragraphs (each on its own equals encoding them inside the text: the GPT-2 pre-tokenizer never
    joins a paragraph's text with the two newlines around it) and join them with two "\\n" tokens."""
    nl = tok.encode("\n", add_special_tokens=False).ids
    assert len(nl) == 1, nl
    encs = tok.encode_batch(paras, add_special_tokens=False)
    lens = np.fromiter((len(e.ids) + 2 for e in encs), dtype=np.int64, count=len(encs))
    starts = np.zeros(len(encs), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    stream = np.empty(int(lens.sum()), dtype=np.int32)
    for e, s in zip(encs, starts):
        n = len(e.ids)
        stream[s:s + n] = e.ids
        stream[s + n:s + n + 2] = nl[0]
    return stream, starts


def make_chat_pool(tok, paras, n_windows, seq, rng):
    """Windows of seq+1 tokens made of synthetic chat conversations, each rendered exactly as the chat template
    renders it (<s> in front, every turn ending with <|im_end|>\\n). Every window starts at the start of a
    conversation, as a served chat prompt does: all training windows, plain or chat, have <s> at position 0, so
    the model has to tell chat from book text by the <|im_start|> turns, not by what opens the window (windows
    cut at random places taught a model that "window not opened by <s>" meant chat)."""
    texts = []
    n_ex = 3 * n_windows + 16  # about 2.5 conversations fit a window
    n = len(paras)
    while len(texts) < n_ex:
        i = rng.randrange(n)
        if rng.random() < 0.6:
            want = rng.randint(100, 900)  # characters of the reply
            reply, j = [], i
            while j < n and sum(map(len, reply)) < want and len(reply) < 5:
                reply.append(paras[j])
                j += 1
            if sum(map(len, reply)) > 1600:
                continue
            msgs = [{"role": "user", "content": rng.choice(STORY_REQUESTS)},
                    {"role": "assistant", "content": "\n\n".join(reply)}]
        else:
            ctx, j = [], i
            while j < n and sum(map(len, ctx)) < rng.randint(80, 600) and len(ctx) < 3:
                ctx.append(paras[j])
                j += 1
            reply = []
            want = rng.randint(100, 800)
            while j < n and sum(map(len, reply)) < want and len(reply) < 4:
                reply.append(paras[j])
                j += 1
            if not reply or sum(map(len, ctx)) + sum(map(len, reply)) > 2000:
                continue
            msgs = [{"role": "user", "content": rng.choice(CONTINUE_REQUESTS) + "\n\n" + "\n\n".join(ctx)},
                    {"role": "assistant", "content": "\n\n".join(reply)}]
        texts.append(render_chat(msgs, False))
    convs = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    flat, k = [], 0
    for _ in range(n_windows):
        w = []
        while len(w) < seq + 1:
            w.extend(convs[k % len(convs)])
            k += 1
        flat.extend(w[:seq + 1])
    return flat, texts[:k]


# ---------------------------------------------------------------------------------------------- main

def main():
    args = parse_args()
    import numpy as np
    import torch
    import torch.nn.functional as F

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = "cuda"
    os.makedirs(args.out, exist_ok=True)

    corpus = args.corpus
    if corpus is None:
        for c in (".devcarry/gutenberg_en.txt.gz", "../shared/corpus/gutenberg_en.txt.gz"):
            if os.path.exists(c):
                corpus = c
                break
    log(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0)}, corpus {corpus}")
    paras, corpus_words, n_chars = load_paragraphs(corpus, args.data_mb)
    # validation: every 100th block of 200 consecutive paragraphs (~1% of the text, spread over all books)
    val_paras = [p for k, p in enumerate(paras) if (k // 200) % 100 == 50]
    train_paras = [p for k, p in enumerate(paras) if (k // 200) % 100 != 50]
    log(f"{n_chars / 1e6:.1f} M chars, {len(paras)} paragraphs ({len(train_paras)} train, {len(val_paras)} val), "
        f"{len(corpus_words)} distinct words")

    tok = train_tokenizer(train_paras, args.vocab)
    V = tok.get_vocab_size()
    log(f"tokenizer trained: vocab {V}")

    train_stream, train_starts = build_stream(tok, train_paras, np)
    val_stream, val_starts = build_stream(tok, val_paras, np)
    n_train_chars = sum(len(p) + 2 for p in train_paras)
    log(f"train {len(train_stream) / 1e6:.2f} M tokens ({n_train_chars / len(train_stream):.2f} chars/token), "
        f"val {len(val_stream) / 1e6:.3f} M tokens")

    rng = random.Random(args.seed)
    pool_flat, pool_texts = make_chat_pool(tok, train_paras, args.chat_pool, args.seq, rng)
    log(f"chat pool: {args.chat_pool} windows from {len(pool_texts)} conversations")

    S = args.seq
    # window starts: paragraph starts with a full window after them
    tr_st = train_starts[train_starts + S <= len(train_stream)]
    va_st = val_starts[val_starts + S <= len(val_stream)]
    g_train = torch.from_numpy(train_stream.astype(np.int64)).to(dev)
    g_tr_st = torch.from_numpy(tr_st).to(dev)
    g_pool = torch.tensor(pool_flat, dtype=torch.long, device=dev).view(args.chat_pool, S + 1)
    offs = torch.arange(S, device=dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    n_chat = int(round(args.batch * args.chat_frac))
    n_plain = args.batch - n_chat
    bos_col = torch.full((args.batch, 1), BOS, dtype=torch.long, device=dev)

    def get_batch():
        idx = g_tr_st[torch.randint(len(g_tr_st), (n_plain,), device=dev, generator=gen)]
        plain = g_train[idx[:, None] + offs[None, :]]  # S tokens after <s>
        plain = torch.cat([bos_col[:n_plain], plain], 1)
        chat = g_pool[torch.randint(args.chat_pool, (n_chat,), device=dev, generator=gen)]
        xy = torch.cat([plain, chat], 0)
        return xy[:, :-1], xy[:, 1:]

    def fixed_windows(stream, starts, n, seed):
        r = np.random.default_rng(seed)
        pick = r.choice(len(starts), size=min(n, len(starts)), replace=False)
        w = np.stack([np.concatenate([[BOS], stream[s:s + S]]) for s in starts[pick]]).astype(np.int64)
        return torch.from_numpy(w).to(dev)

    val_w = fixed_windows(val_stream, va_st, 256, 1)
    trn_w = fixed_windows(train_stream, tr_st, 256, 2)
    val_chat = g_pool[-64:] if args.chat_pool > 64 else g_pool  # (seen in training; only a sanity figure)

    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=V,
        hidden_size=args.hidden,
        intermediate_size=args.ffn,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=args.hidden // args.heads,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=EOS,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
        use_cache=False,
    )
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f} M parameters (tied embeddings), attn {model.config._attn_implementation}")

    if args.dropout > 0:
        # GPT-2 style residual dropout for the many epochs over a small corpus; forward hooks, so the exported
        # model is a plain LlamaForCausalLM (hooks do nothing in eval mode)
        def drop_hook(mod, inp, out):
            if isinstance(out, tuple):
                return (F.dropout(out[0], args.dropout, mod.training),) + tuple(out[1:])
            return F.dropout(out, args.dropout, mod.training)

        for layer in model.model.layers:
            layer.self_attn.register_forward_hook(drop_hook)
            layer.mlp.register_forward_hook(drop_hook)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True,
    )

    def loss_of(m, x, y):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = m(input_ids=x, use_cache=False).logits
        return F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1))

    fwd = model
    if not args.no_compile:
        try:
            fwd = torch.compile(model)
        except Exception as e:  # noqa: BLE001
            log(f"torch.compile unavailable: {e}")

    @torch.no_grad()
    def evaluate(windows, bs=64):
        model.eval()
        tot = 0.0
        for i in range(0, len(windows), bs):
            w = windows[i:i + bs]
            tot += loss_of(fwd, w[:, :-1], w[:, 1:]).item() * len(w)
        model.train()
        return tot / len(windows)

    # first step (compilation) outside the time budget
    model.train()
    x, y = get_batch()
    t0 = time.time()
    try:
        loss = loss_of(fwd, x, y)
        loss.backward()
    except Exception as e:  # noqa: BLE001
        log(f"compiled step failed ({type(e).__name__}: {e}); running eager")
        fwd = model
        opt.zero_grad(set_to_none=True)
        loss = loss_of(fwd, x, y)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    log(f"first step (compile) {time.time() - t0:.1f}s, loss {loss.item():.3f}")
    evaluate(val_w[:64])  # compile the eval graph too

    budget = args.minutes * 60.0
    hard_end = T_START + args.deadline_minutes * 60.0 - 45.0  # keep ~45 s for export and samples
    t_train = time.time()
    budget = max(5.0, min(budget, hard_end - t_train))
    log(f"training for {budget:.0f}s, batch {args.batch}x{S} ({n_chat} chat), lr {args.lr}")

    step, tokens, ema = 0, 0, None
    best = (float("inf"), None, 0)
    history = []
    next_eval = args.eval_every
    while True:
        el = time.time() - t_train
        if el >= budget:
            break
        frac = el / budget
        if step < args.warmup:
            lr = args.lr * (step + 1) / args.warmup
        else:
            lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * frac))
        for gp in opt.param_groups:
            gp["lr"] = lr
        x, y = get_batch()
        loss = loss_of(fwd, x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens += x.numel()
        if step % 50 == 0:
            lv = loss.item()
            ema = lv if ema is None else 0.9 * ema + 0.1 * lv
        if el >= next_eval or step == 1:
            vl = evaluate(val_w)
            history.append({"step": step, "seconds": round(el, 1), "tokens": tokens, "train_loss_ema": ema,
                            "val_loss": vl, "lr": lr})
            log(f"step {step} tok {tokens / 1e6:.0f}M ({tokens / max(el, 1e-9) / 1e6:.2f} M tok/s) "
                f"train~{(ema or loss.item()):.3f} val {vl:.3f} lr {lr:.2e}")
            if vl < best[0]:
                best = (vl, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
            if step > 1:
                next_eval += args.eval_every
    train_secs = time.time() - t_train
    vl = evaluate(val_w)
    history.append({"step": step, "seconds": round(train_secs, 1), "tokens": tokens, "train_loss_ema": ema,
                    "val_loss": vl, "lr": 0})
    if vl <= best[0]:
        best = (vl, None, step)
    else:
        log(f"final val {vl:.4f} worse than best {best[0]:.4f} at step {best[2]}: exporting that one")
        model.load_state_dict(best[1])
    final_val = evaluate(val_w)
    final_train = evaluate(trn_w)
    chat_loss = evaluate(val_chat)
    log(f"done: {step} steps, {tokens / 1e6:.1f} M tokens in {train_secs:.0f}s "
        f"({tokens / len(train_stream):.1f} epochs); train {final_train:.4f} val {final_val:.4f} "
        f"chat {chat_loss:.4f}")

    # ------------------------------------------------------------------------------------------ export
    out = args.out
    model.config.use_cache = True
    model.to(torch.bfloat16).save_pretrained(out)
    write_tokenizer_files(tok, out, 1024)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": BOS, "eos_token_id": [EOS, IM_END], "pad_token_id": EOS, "do_sample": True,
                   "temperature": 0.7, "top_p": 0.95}, f, indent=2)
        f.write("\n")
    stray = os.path.join(out, "chat_template.jinja")
    if os.path.exists(stray):
        os.remove(stray)
    del model, fwd, opt
    torch.cuda.empty_cache()

    # ------------------------------------------------------------------------- reload and sample (HF)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    htok = AutoTokenizer.from_pretrained(out)
    hmod = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).to(dev).eval()
    checks = {}
    probe = "Once upon a time, there was a little house."
    checks["probe_text"] = probe
    checks["probe_ids"] = htok(probe).input_ids
    assert checks["probe_ids"][0] == BOS and checks["probe_ids"].count(BOS) == 1, checks["probe_ids"]
    assert checks["probe_ids"][1:] == tok.encode(probe, add_special_tokens=False).ids
    msgs = [{"role": "user", "content": "Tell me a story."}]
    rendered = htok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert rendered == render_chat(msgs, True), repr(rendered)
    chat_ids = htok(rendered, add_special_tokens=False).input_ids
    checks["chat_rendered"] = rendered
    checks["chat_ids"] = chat_ids
    checks["hf_tokenizer_class"] = type(htok).__name__
    checks["decode_roundtrip"] = htok.decode(checks["probe_ids"], skip_special_tokens=True) == probe
    log(f"reloaded: {type(htok).__name__}, probe ids {checks['probe_ids']}, chat ids {chat_ids}")

    torch.manual_seed(args.seed)
    prompts = ["Once upon a time", "It was a dark and stormy night, and", "The old man looked at",
               "In the morning she went down to the river and", "\u201cWhere are you going?\u201d"]
    samples = []
    word_hits = word_tot = chat_stops = 0

    def gen(ids, n, k):
        x = torch.tensor([ids], device=dev)
        o = hmod.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=True,
                          temperature=0.7, top_p=0.95, num_return_sequences=k)
        outs = []
        for row in o[:, len(ids):].tolist():
            if IM_END in row:  # generation stops at the first EOS id; drop the padding after it
                row = row[:row.index(IM_END) + 1]
            elif EOS in row:
                row = row[:row.index(EOS) + 1]
            outs.append(row)
        return outs

    def score(text):
        ws = re.findall(r"[a-z]+", text.lower())
        return sum(w in corpus_words for w in ws), len(ws)

    for p in prompts + [None]:
        ids = chat_ids if p is None else htok(p).input_ids
        for r, new in enumerate(gen(ids, 300 if p is None else 120, 4)):
            if p is None:
                chat_stops += IM_END in new
            text = htok.decode(new, skip_special_tokens=True)
            h, t = score(text)
            word_hits += h
            word_tot += t
            if r == 0 and p is not None:
                samples.append({"prompt": p, "completion": text})
            elif r == 0:
                samples.append({"prompt": rendered, "completion": text, "chat": True,
                                "stopped_at_im_end": IM_END in new, "n_tokens": len(new)})
    frac = word_hits / max(word_tot, 1)
    log(f"chat replies that ended with <|im_end|> within 300 tokens: {chat_stops}/4")
    log(f"self-check: {word_hits}/{word_tot} generated words are corpus words ({100 * frac:.1f}%)")
    for s in samples:
        log(f"SAMPLE {json.dumps(s, ensure_ascii=False)}")

    logd = {
        "params": n_params,
        "config": {k: getattr(args, k) for k in vars(args)},
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "corpus_chars": n_chars,
        "paragraphs": {"train": len(train_paras), "val": len(val_paras)},
        "train_tokens": int(len(train_stream)),
        "val_tokens": int(len(val_stream)),
        "tokens_seen": tokens,
        "epochs": tokens / len(train_stream),
        "steps": step,
        "train_seconds": round(train_secs, 1),
        "total_seconds": round(time.time() - T_START, 1),
        "best_step": best[2],
        "final_train_loss": final_train,
        "final_val_loss": final_val,
        "chat_window_loss": chat_loss,
        "history": history,
        "samples": samples,
        "word_fraction_in_corpus_vocab": frac,
        "words_scored": word_tot,
        "chat_replies_ended_with_im_end_of_4": chat_stops,
        "checks": checks,
    }
    with open(os.path.join(out, "train_log.json"), "w") as f:
        json.dump(logd, f, indent=1, ensure_ascii=False)
    log("files: " + ", ".join(f"{n} ({os.path.getsize(os.path.join(out, n))} B)" for n in sorted(os.listdir(out))))


if __name__ == "__main__":
    sys.exit(main())
