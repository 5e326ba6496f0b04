#version 450
// Merge the splits of attention.comp: out = sum_z acc_z e^(m_z - M) / sum_z l_z e^(m_z - M),
// M the largest split max. With gpt-oss's sinks the head's sink logit joins M and adds e^(sink - M)
// to the denominator, once per row (the splits leave it out). One workgroup per (head, query row).
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer SC { float d[]; } part;
layout(std430, binding = 1) writeonly buffer O { float d[]; } o;
layout(std430, binding = 2) readonly buffer SK { float d[]; } sk; // f32 [1, H] (has_sinks)
layout(std430, binding = 3) readonly buffer QS { int d[]; } qs;
layout(push_constant) uniform P { uint o_off, o_stride, H, HD, n_split, has_sinks, sk_off, qs_off, n_seqs, skip_q; } p;
void main() {
    uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
    if (p.skip_q > 0u) {
        int lo = 0, hi = int(p.n_seqs) - 1; // the sequence that owns row r (q_start is sorted)
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (qs.d[p.qs_off + uint(mid)] <= int(r)) lo = mid; else hi = mid - 1;
        }
        if (uint(qs.d[p.qs_off + uint(lo) + 1u] - qs.d[p.qs_off + uint(lo)]) >= p.skip_q) return;
    }
    uint base = (r * p.H + h) * p.n_split * (p.HD + 2u);
    float M = -1.0 / 0.0;
    for (uint z = 0u; z < p.n_split; z++) M = max(M, part.d[base + z * (p.HD + 2u) + p.HD]);
    float L = 0.0;
    if (p.has_sinks != 0u) {
        float sv = sk.d[p.sk_off + h];
        M = max(M, sv);
        L = exp(sv - M);
    }
    for (uint z = 0u; z < p.n_split; z++) {
        uint zb = base + z * (p.HD + 2u);
        float lz = part.d[zb + p.HD + 1u];
        if (lz > 0.0) L += lz * exp(part.d[zb + p.HD] - M);
    }
    for (uint d = gl_LocalInvocationID.x; d < p.HD; d += 128u) {
        float v = 0.0;
        for (uint z = 0u; z < p.n_split; z++) {
            uint zb = base + z * (p.HD + 2u);
            if (part.d[zb + p.HD + 1u] > 0.0) v += part.d[zb + d] * exp(part.d[zb + p.HD] - M);
        }
        o.d[p.o_off + r * p.o_stride + h * p.HD + d] = v / L;
    }
}
