#!/usr/bin/env python3
"""A cross-check that needs no torch: a pure-Python (float64) forward pass of Mixtral, Qwen2-MoE and
Qwen3-MoE as transformers' modeling code computes them (written from reading modeling_mixtral.py,
modeling_qwen2_moe.py and modeling_qwen3_moe.py, not copied), on tiny random models: softmax routing over
the experts, top-k, the renormalisation (always for Mixtral, norm_topk_prob for Qwen), SwiGLU experts,
Qwen2-MoE's shared expert times sigmoid(x . shared_expert_gate), dense layers from decoder_sparse_step
and mlp_only_layers, Qwen2-MoE's qkv bias, Qwen3-MoE's q/k norms, and Mixtral's sliding window. It writes
config.json, model.safetensors (per-expert tensors as the Hub checkpoints name them, or with --fused
transformers 5's experts.gate_up_proj [E, 2I, D] / experts.down_proj [E, D, I]) and ref_<len>.json
(every position's log-probabilities for prompts of 10 and 25 tokens). Compare with
tools/ref_dense_families_cmp.py, which runs `vllmc generate --prompt-logprobs` on the folder:

    python3 tools/ref_moe_families.py qwen3moe /tmp/ref/qwen3moe [--fused]
    python3 tools/ref_dense_families_cmp.py qwen3moe /tmp/ref/qwen3moe cpu float32 [max-num-batched-tokens]
"""
import json, math, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import save_st, f32, rows, mm, rmsnorm  # noqa: E402



class M:
    def __init__(s, arch, cfg, seed):
        s.a, s.c, s.t = arch, cfg, {}
        rnd = random.Random(seed)
        D, V = cfg["hidden_size"], cfg["vocab_size"]
        H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        s.hd = hd

        def mat(name, r, c, g=1.0):
            s.t[name] = ([r, c], [f32(rnd.gauss(0, 1) / math.sqrt(c) * g) for _ in range(r * c)])

        def vec(name, n, mean, sd):
            s.t[name] = ([n], [f32(mean + sd * rnd.gauss(0, 1)) for _ in range(n)])

        s.t["model.embed_tokens.weight"] = ([V, D], [f32(rnd.gauss(0, 1)) for _ in range(V * D)])
        for l in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % l
            vec(p + "input_layernorm.weight", D, 1.0, 0.3)
            vec(p + "post_attention_layernorm.weight", D, 1.0, 0.3)
            mat(p + "self_attn.q_proj.weight", H * hd, D)
            mat(p + "self_attn.k_proj.weight", KV * hd, D)
            mat(p + "self_attn.v_proj.weight", KV * hd, D)
            mat(p + "self_attn.o_proj.weight", D, H * hd, 3.0)
            if arch == "qwen2moe":
                for n, r in (("q", H * hd), ("k", KV * hd), ("v", KV * hd)):
                    vec(p + "self_attn.%s_proj.bias" % n, r, 0.0, 0.2)
            if arch == "qwen3moe":
                vec(p + "self_attn.q_norm.weight", hd, 1.0, 0.3)
                vec(p + "self_attn.k_norm.weight", hd, 1.0, 0.3)
            if not s.is_moe(l):
                F = cfg["intermediate_size"]
                mat(p + "mlp.gate_proj.weight", F, D)
                mat(p + "mlp.up_proj.weight", F, D)
                mat(p + "mlp.down_proj.weight", D, F, 3.0)
                continue
            E, I = s.n_experts(), s.moe_inter()
            blk = p + ("block_sparse_moe." if arch == "mixtral" else "mlp.")
            mat(blk + "gate.weight", E, D, 4.0)  # a wide spread of router logits: no near-ties in the top k
            names = ("w1", "w3", "w2") if arch == "mixtral" else ("gate_proj", "up_proj", "down_proj")
            for e in range(E):
                mat(blk + "experts.%d.%s.weight" % (e, names[0]), I, D)
                mat(blk + "experts.%d.%s.weight" % (e, names[1]), I, D)
                mat(blk + "experts.%d.%s.weight" % (e, names[2]), D, I, 3.0)
            if arch == "qwen2moe":
                Fs = cfg["shared_expert_intermediate_size"]
                mat(p + "mlp.shared_expert.gate_proj.weight", Fs, D)
                mat(p + "mlp.shared_expert.up_proj.weight", Fs, D)
                mat(p + "mlp.shared_expert.down_proj.weight", D, Fs, 3.0)
                mat(p + "mlp.shared_expert_gate.weight", 1, D, 2.0)
        vec("model.norm.weight", D, 0.0, 1.0)
        s.t["lm_head.weight"] = ([V, D], [f32(rnd.gauss(0, 1)) for _ in range(V * D)])

    def n_experts(s):
        return s.c["num_local_experts"] if s.a == "mixtral" else s.c["num_experts"]

    def moe_inter(s):
        return s.c["intermediate_size"] if s.a == "mixtral" else s.c["moe_intermediate_size"]

    def is_moe(s, l):
        # Qwen2MoeDecoderLayer / Qwen3MoeDecoderLayer's rule; every Mixtral layer is sparse
        if s.a == "mixtral":
            return True
        c = s.c
        return l not in c.get("mlp_only_layers", []) and s.n_experts() > 0 and (l + 1) % c.get("decoder_sparse_step", 1) == 0

    def W(s, n):
        return rows(*s.t[n])

    def mm(s, x, w, b=None):
        return mm(x, w, b)

    def norm(s, x, w):
        return rmsnorm(x, w, s.c["rms_norm_eps"])

    def rope(s, v, pos):
        hd = s.hd
        h = hd // 2
        out = list(v)
        for i in range(h):
            a = pos / (s.c["rope_theta"] ** (2 * i / hd))
            cs, sn = math.cos(a), math.sin(a)
            out[i] = v[i] * cs - v[i + h] * sn
            out[i + h] = v[i + h] * cs + v[i] * sn
        return out

    def mlp(s, x, g, u, d):
        gt, up = s.mm(x, g), s.mm(x, u)
        return s.mm([a / (1 + math.exp(-a)) * b for a, b in zip(gt, up)], d)

    def moe(s, x, l):
        """The sparse block for one token: softmax over the router logits, top k, renormalised when
        norm_topk_prob (Mixtral: always), the weighted sum of the chosen experts' SwiGLU outputs."""
        c, p = s.c, "model.layers.%d." % l
        blk = p + ("block_sparse_moe." if s.a == "mixtral" else "mlp.")
        lg = s.mm(x, s.W(blk + "gate.weight"))
        mx = max(lg)
        e = [math.exp(v - mx) for v in lg]
        z = sum(e)
        prob = [v / z for v in e]
        k = c["num_experts_per_tok"]
        top = sorted(range(len(prob)), key=lambda i: (-prob[i], i))[:k]
        w = [prob[i] for i in top]
        if s.a == "mixtral" or c.get("norm_topk_prob", False):
            tot = sum(w)
            w = [v / tot for v in w]
        names = ("w1", "w3", "w2") if s.a == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        out = [0.0] * len(x)
        for ex, wt in zip(top, w):
            q = blk + "experts.%d." % ex
            y = s.mlp(x, s.W(q + names[0] + ".weight"), s.W(q + names[1] + ".weight"), s.W(q + names[2] + ".weight"))
            out = [a + wt * b for a, b in zip(out, y)]
        if s.a == "qwen2moe":
            sh = p + "mlp.shared_expert."
            y = s.mlp(x, s.W(sh + "gate_proj.weight"), s.W(sh + "up_proj.weight"), s.W(sh + "down_proj.weight"))
            gl = s.mm(x, s.W(p + "mlp.shared_expert_gate.weight"))[0]
            sg = 1.0 / (1.0 + math.exp(-gl))
            out = [a + sg * b for a, b in zip(out, y)]
        return out

    def attention(s, h, l):
        c, hd, p = s.c, s.hd, "model.layers.%d." % l
        H, KV, T = c["num_attention_heads"], c["num_key_value_heads"], len(h)
        bias = (lambda n: s.W(p + "self_attn.%s_proj.bias" % n)) if s.a == "qwen2moe" else (lambda n: None)
        q = [s.mm(r, s.W(p + "self_attn.q_proj.weight"), bias("q")) for r in h]
        k = [s.mm(r, s.W(p + "self_attn.k_proj.weight"), bias("k")) for r in h]
        v = [s.mm(r, s.W(p + "self_attn.v_proj.weight"), bias("v")) for r in h]

        def heads(rows, n):
            return [[r[j * hd:(j + 1) * hd] for j in range(n)] for r in rows]

        q, k, v = heads(q, H), heads(k, KV), heads(v, KV)
        if s.a == "qwen3moe":
            q = [[s.norm(hh, s.W(p + "self_attn.q_norm.weight")) for hh in r] for r in q]
            k = [[s.norm(hh, s.W(p + "self_attn.k_norm.weight")) for hh in r] for r in k]
        q = [[s.rope(hh, t) for hh in q[t]] for t in range(T)]
        k = [[s.rope(hh, t) for hh in k[t]] for t in range(T)]
        win = c.get("sliding_window") if s.a == "mixtral" or c.get("use_sliding_window") else None
        att = []
        for t in range(T):
            row = []
            for hh in range(H):
                g = hh // (H // KV)
                js = [j for j in range(t + 1) if win is None or j > t - win]
                sc = [sum(a * b for a, b in zip(q[t][hh], k[j][g])) / math.sqrt(hd) for j in js]
                mx = max(sc)
                e = [math.exp(z - mx) for z in sc]
                z = sum(e)
                row += [sum(e[i] / z * v[js[i]][g][d] for i in range(len(js))) for d in range(hd)]
            att.append(row)
        return [s.mm(r, s.W(p + "self_attn.o_proj.weight")) for r in att]

    def forward(s, ids):
        c = s.c
        x = [list(s.W("model.embed_tokens.weight")[i]) for i in ids]
        for l in range(c["num_hidden_layers"]):
            p = "model.layers.%d." % l
            o = s.attention([s.norm(r, s.W(p + "input_layernorm.weight")) for r in x], l)
            x = [[a + b for a, b in zip(r, rr)] for r, rr in zip(x, o)]
            h = [s.norm(r, s.W(p + "post_attention_layernorm.weight")) for r in x]
            if s.is_moe(l):
                d = [s.moe(r, l) for r in h]
            else:
                d = [s.mlp(r, s.W(p + "mlp.gate_proj.weight"), s.W(p + "mlp.up_proj.weight"),
                           s.W(p + "mlp.down_proj.weight")) for r in h]
            x = [[a + b for a, b in zip(r, rr)] for r, rr in zip(x, d)]
        x = [s.norm(r, s.W("model.norm.weight")) for r in x]
        out = []
        for r in x:
            lg = s.mm(r, s.W("lm_head.weight"))
            mx = max(lg)
            lse = mx + math.log(sum(math.exp(z - mx) for z in lg))
            out.append([z - lse for z in lg])
        return out


def fuse(m):
    """transformers 5's layout: experts.gate_up_proj [E, 2I, D] (gate rows first) and experts.down_proj
    [E, D, I] under mlp. (Mixtral's router becomes mlp.gate too)."""
    t, E, I = m.t, m.n_experts(), m.moe_inter()
    names = ("w1", "w3", "w2") if m.a == "mixtral" else ("gate_proj", "up_proj", "down_proj")
    for l in range(m.c["num_hidden_layers"]):
        if not m.is_moe(l):
            continue
        p = "model.layers.%d." % l
        blk = p + ("block_sparse_moe." if m.a == "mixtral" else "mlp.")
        gu, dn = [], []
        for e in range(E):
            q = blk + "experts.%d." % e
            gu += t.pop(q + names[0] + ".weight")[1] + t.pop(q + names[1] + ".weight")[1]
            dn += t.pop(q + names[2] + ".weight")[1]
        D = m.c["hidden_size"]
        t[p + "mlp.experts.gate_up_proj"] = ([E, 2 * I, D], gu)
        t[p + "mlp.experts.down_proj"] = ([E, D, I], dn)
        if m.a == "mixtral":
            t[p + "mlp.gate.weight"] = t.pop(blk + "gate.weight")


base = {"vocab_size": 40, "hidden_size": 24, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
        "rms_norm_eps": 1e-6, "max_position_embeddings": 256, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "float32", "hidden_act": "silu", "rope_theta": 10000.0, "tie_word_embeddings": False}
cfgs = {
    "mixtral": dict(base, architectures=["MixtralForCausalLM"], model_type="mixtral", num_hidden_layers=2,
                    intermediate_size=16, num_local_experts=4, num_experts_per_tok=2, sliding_window=7,
                    router_jitter_noise=0.0),
    "qwen2moe": dict(base, architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe", num_hidden_layers=4,
                     intermediate_size=40, moe_intermediate_size=12, shared_expert_intermediate_size=20,
                     num_experts=6, num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=2,
                     mlp_only_layers=[], use_sliding_window=False, sliding_window=None),
    "qwen3moe": dict(base, architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", num_hidden_layers=3,
                     intermediate_size=40, moe_intermediate_size=12, num_experts=8, num_experts_per_tok=3,
                     norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[1], attention_bias=False,
                     use_sliding_window=False, sliding_window=None),
}

if __name__ == "__main__":
    arch, out = sys.argv[1], sys.argv[2]
    c = dict(cfgs[arch])
    m = M(arch, c, 4321)
    os.makedirs(out, exist_ok=True)
    json.dump(c, open(out + "/config.json", "w"))
    refs = {}
    for plen in (10, 25):
        rr = random.Random(plen)
        ids = [rr.randrange(3, 40) for _ in range(plen)]
        refs[plen] = {"ids": ids, "lp": m.forward(ids)}
    if "--fused" in sys.argv:
        fuse(m)
    save_st(out + "/model.safetensors", m.t)
    for plen, r in refs.items():
        json.dump(r, open(out + "/ref_%d.json" % plen, "w"))
    print("ok", arch)
