#!/usr/bin/env python3
"""A cross-check that needs no torch: a pure-Python (float64) forward pass of Gemma 2, Gemma 3 text and
Phi-3 as transformers' modeling code computes them (written from reading it, not copied), on a tiny
random model (hidden 24, 2-3 layers, windows of 6-7 tokens, soft-capping, Gemma 3's local/global RoPE,
Phi-3's fused projections, partial rotary and longrope with original_max_position_embeddings 16). It
writes config.json, model.safetensors and ref_<len>.json (every position's log-probabilities for prompts
of 10 and 25 tokens: the short and the long longrope factors). tools/ref_dense_families_cmp.py runs
`vllmc generate --prompt-logprobs` on the folder and prints the largest difference. This checks the
plumbing (names, splits, layer patterns, op order) independently of the transformers goldens
(tests/golden/{gemma2,gemma3,phi3}-*), which remain the reference.

    python3 tools/ref_dense_families.py gemma2 /tmp/ref/gemma2
    python3 tools/ref_dense_families_cmp.py gemma2 /tmp/ref/gemma2 cpu float32 [max-num-batched-tokens]
"""
import json, math, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import save_st, f32, rows, mm, rmsnorm  # noqa: E402


class M:
    def __init__(s, arch, cfg, seed):
        s.a, s.c = arch, cfg
        rnd = random.Random(seed)
        s.t = {}
        D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
        H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd = cfg.get("head_dim", D // H)
        s.hd = hd
        def mat(name, r, c, g=1.0):
            s.t[name] = ([r, c], [f32(rnd.gauss(0, 1) / math.sqrt(c) * g) for _ in range(r * c)])
        def vec(name, n, mean, sd):
            s.t[name] = ([n], [f32(mean + sd * rnd.gauss(0, 1)) for _ in range(n)])
        s.t["model.embed_tokens.weight"] = ([V, D], [f32(rnd.gauss(0, 1)) for _ in range(V * D)])
        gem = arch != "phi3"
        nm = 0.0 if gem else 1.0
        for l in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % l
            vec(p + "input_layernorm.weight", D, nm, 0.3)
            if gem:
                mat(p + "self_attn.q_proj.weight", H * hd, D); mat(p + "self_attn.k_proj.weight", KV * hd, D)
                mat(p + "self_attn.v_proj.weight", KV * hd, D)
                mat(p + "mlp.gate_proj.weight", F, D); mat(p + "mlp.up_proj.weight", F, D)
                vec(p + "pre_feedforward_layernorm.weight", D, nm, 0.3)
                vec(p + "post_feedforward_layernorm.weight", D, nm, 0.3)
                if arch == "gemma3":
                    vec(p + "self_attn.q_norm.weight", hd, nm, 0.3); vec(p + "self_attn.k_norm.weight", hd, nm, 0.3)
            else:
                mat(p + "self_attn.qkv_proj.weight", (H + 2 * KV) * hd, D); mat(p + "mlp.gate_up_proj.weight", 2 * F, D)
            vec(p + "post_attention_layernorm.weight", D, nm, 0.3)
            mat(p + "self_attn.o_proj.weight", D, H * hd, 3.0); mat(p + "mlp.down_proj.weight", D, F, 3.0)
        vec("model.norm.weight", D, 0.0, 1.0)
        if not cfg.get("tie_word_embeddings", gem):
            s.t["lm_head.weight"] = ([V, D], [f32(rnd.gauss(0, 1)) for _ in range(V * D)])

    def W(s, n): return rows(*s.t[n])

    def mm(s, x, w): return mm(x, w)

    def norm(s, x, w): return rmsnorm(x, w, s.c["rms_norm_eps"], 1.0 if s.a != "phi3" else 0.0)

    def sliding(s, l):
        c = s.c
        if "layer_types" in c: return c["layer_types"][l] == "sliding_attention"
        if s.a == "gemma2": return l % 2 == 0
        if s.a == "gemma3": return (l + 1) % c.get("sliding_window_pattern", 6) != 0
        return c.get("sliding_window") is not None

    def inv_freq(s, l, seqlen):
        c, hd = s.c, s.hd
        rot = int(hd * c.get("partial_rotary_factor", 1.0))
        theta = c["rope_theta"]
        fac = [1.0] * (rot // 2); scale = 1.0
        if s.a == "gemma3" and s.sliding(l):
            theta = c["rope_local_base_freq"]
        elif c.get("rope_scaling"):
            rs = c["rope_scaling"]
            t = rs.get("rope_type", rs.get("type"))
            if t == "linear": fac = [rs["factor"]] * (rot // 2)
            elif t in ("longrope", "su"):
                orig = c["original_max_position_embeddings"]
                fac = rs["long_factor"] if seqlen > orig else rs["short_factor"]
                f = c["max_position_embeddings"] / orig
                scale = math.sqrt(1 + math.log(f) / math.log(orig)) if f > 1 else 1.0
        return rot, [1.0 / (fac[i] * theta ** (2 * i / rot)) for i in range(rot // 2)], scale

    def rope(s, v, pos, rot, inv, ms):
        out = list(v); h = rot // 2
        for i in range(h):
            a = pos * inv[i]; cs, sn = math.cos(a) * ms, math.sin(a) * ms
            out[i] = v[i] * cs - v[i + h] * sn
            out[i + h] = v[i + h] * cs + v[i] * sn
        return out

    def act(s, g):
        if s.a == "phi3": return g / (1 + math.exp(-g))
        return 0.5 * g * (1 + math.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))

    def forward(s, ids):
        c, hd = s.c, s.hd
        D, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        T = len(ids)
        E = s.W("model.embed_tokens.weight")
        x = [list(E[i]) for i in ids]
        if s.a != "phi3": x = [[v * math.sqrt(D) for v in r] for r in x]
        for l in range(c["num_hidden_layers"]):
            p = "model.layers.%d." % l
            h = [s.norm(r, s.W(p + "input_layernorm.weight")) for r in x]
            if s.a == "phi3":
                qkv = [s.mm(r, s.W(p + "self_attn.qkv_proj.weight")) for r in h]
                q = [r[:H * hd] for r in qkv]; k = [r[H * hd:(H + KV) * hd] for r in qkv]; v = [r[(H + KV) * hd:] for r in qkv]
            else:
                q = [s.mm(r, s.W(p + "self_attn.q_proj.weight")) for r in h]
                k = [s.mm(r, s.W(p + "self_attn.k_proj.weight")) for r in h]
                v = [s.mm(r, s.W(p + "self_attn.v_proj.weight")) for r in h]
            def heads(rows, n): return [[r[j * hd:(j + 1) * hd] for j in range(n)] for r in rows]
            q, k, v = heads(q, H), heads(k, KV), heads(v, KV)
            if s.a == "gemma3":
                q = [[s.norm(hh, s.W(p + "self_attn.q_norm.weight")) for hh in r] for r in q]
                k = [[s.norm(hh, s.W(p + "self_attn.k_norm.weight")) for hh in r] for r in k]
            rot, inv, ms = s.inv_freq(l, T)
            q = [[s.rope(hh, t, rot, inv, ms) for hh in q[t]] for t in range(T)]
            k = [[s.rope(hh, t, rot, inv, ms) for hh in k[t]] for t in range(T)]
            scale = c["query_pre_attn_scalar"] ** -0.5 if s.a != "phi3" else hd ** -0.5
            cap = c.get("attn_logit_softcapping") if s.a == "gemma2" or s.a == "gemma3" else None
            W = c.get("sliding_window") if s.sliding(l) else None
            att = []
            for t in range(T):
                row = []
                for hh in range(H):
                    g = hh // (H // KV)
                    js = [j for j in range(t + 1) if W is None or j > t - W]
                    sc = [sum(a * b for a, b in zip(q[t][hh], k[j][g])) * scale for j in js]
                    if cap: sc = [math.tanh(z / cap) * cap for z in sc]
                    mx = max(sc); e = [math.exp(z - mx) for z in sc]; z = sum(e)
                    row += [sum(e[i] / z * v[js[i]][g][d] for i in range(len(js))) for d in range(hd)]
                att.append(row)
            o = [s.mm(r, s.W(p + "self_attn.o_proj.weight")) for r in att]
            if s.a != "phi3":
                o = [s.norm(r, s.W(p + "post_attention_layernorm.weight")) for r in o]
                x = [[a + b for a, b in zip(r, rr)] for r, rr in zip(x, o)]
                h = [s.norm(r, s.W(p + "pre_feedforward_layernorm.weight")) for r in x]
                gt = [s.mm(r, s.W(p + "mlp.gate_proj.weight")) for r in h]
                up = [s.mm(r, s.W(p + "mlp.up_proj.weight")) for r in h]
            else:
                x = [[a + b for a, b in zip(r, rr)] for r, rr in zip(x, o)]
                h = [s.norm(r, s.W(p + "post_attention_layernorm.weight")) for r in x]
                gu = [s.mm(r, s.W(p + "mlp.gate_up_proj.weight")) for r in h]
                F = c["intermediate_size"]
                gt = [r[:F] for r in gu]; up = [r[F:] for r in gu]
            m = [[s.act(a) * b for a, b in zip(r, rr)] for r, rr in zip(gt, up)]
            d = [s.mm(r, s.W(p + "mlp.down_proj.weight")) for r in m]
            if s.a != "phi3": d = [s.norm(r, s.W(p + "post_feedforward_layernorm.weight")) for r in d]
            x = [[a + b for a, b in zip(r, rr)] for r, rr in zip(x, d)]
        x = [s.norm(r, s.W("model.norm.weight")) for r in x]
        head = s.W("lm_head.weight") if "lm_head.weight" in s.t else E
        lg = [s.mm(r, head) for r in x]
        fc = c.get("final_logit_softcapping")
        if fc and s.a != "phi3": lg = [[math.tanh(z / fc) * fc for z in r] for r in lg]
        out = []
        for r in lg:
            mx = max(r); lse = mx + math.log(sum(math.exp(z - mx) for z in r))
            out.append([z - lse for z in r])
        return out

base = {"vocab_size": 40, "hidden_size": 24, "intermediate_size": 40, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 8, "rms_norm_eps": 1e-6, "max_position_embeddings": 256,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
cfgs = {
 "gemma2": dict(base, architectures=["Gemma2ForCausalLM"], model_type="gemma2", num_hidden_layers=2,
                rope_theta=10000.0, query_pre_attn_scalar=12, sliding_window=6, attn_logit_softcapping=1.5,
                final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh"),
 "gemma3": dict(base, architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", num_hidden_layers=3,
                rope_theta=1e6, rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 2.0},
                query_pre_attn_scalar=8, sliding_window=6, sliding_window_pattern=3, attn_logit_softcapping=None,
                final_logit_softcapping=None),
 "phi3": dict(base, architectures=["Phi3ForCausalLM"], model_type="phi3", num_hidden_layers=2, head_dim=12,
              rope_theta=10000.0, partial_rotary_factor=0.5, original_max_position_embeddings=16, sliding_window=7,
              hidden_act="silu", tie_word_embeddings=False,
              rope_scaling={"type": "longrope", "short_factor": [1.0, 1.5, 2.0], "long_factor": [2.0, 4.0, 8.0]}),
}
arch = sys.argv[1]; out = sys.argv[2]
c = dict(cfgs[arch])
if arch == "phi3": c["head_dim"] = 12  # hidden 24 / 2 heads
m = M(arch, c, 1234)
os.makedirs(out, exist_ok=True)
json.dump(c, open(out + "/config.json", "w"))
save_st(out + "/model.safetensors", m.t)
for plen in (10, 25):
    rr = random.Random(plen); ids = [rr.randrange(3, 40) for _ in range(plen)]
    lp = m.forward(ids)
    json.dump({"ids": ids, "lp": lp}, open(out + "/ref_%d.json" % plen, "w"))
print("ok", arch)
