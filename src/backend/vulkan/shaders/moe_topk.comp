#version 450
// Routing on the device (backend.h moe_topk): one workgroup per token. The logits go to shared memory;
// without TOPK_FIRST they become the softmax (max subtracted; the sum is a tree, not the host's sequence,
// and exp is the device's: the weights differ from the host's by a few ulp); then k rounds of an argmax
// over the experts not yet taken (ties: the lower index, as be_moe_route_row), and one invocation writes
// the token's ids and weights (renormalised, or gpt-oss's softmax of the k logits, in order j) and
// sigmoid(gate) for Qwen2-MoE's shared expert.
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer L { float d[]; } lg;
layout(std430, binding = 1) readonly buffer G { float d[]; } gate;
layout(std430, binding = 2) writeonly buffer I { int d[]; } ids;
layout(std430, binding = 3) writeonly buffer W { float d[]; } wt;
layout(push_constant) uniform P {
    uint l_off, l_stride, g_off, g_stride, has_gate, i_off, i_stride, w_off, w_stride, n, E, k, flags;
} p;

const uint TOPK_FIRST = 1u, NORM = 2u, NONE = 0xffffffffu;

shared float val[1024]; // the token's logits, then (softmax first) probabilities
shared uint taken[1024];
shared float rv[128];
shared uint ri[128];
shared uint sel[64];

// (va, ia) or (vb, ib): the larger value, the lower index on a tie; NONE loses.
bool b_wins(float va, uint ia, float vb, uint ib) {
    return ib != NONE && (ia == NONE || vb > va || (vb == va && ib < ia));
}

void main() {
    uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    if (t >= p.n) return;
    for (uint e = tid; e < p.E; e += 128u) {
        val[e] = lg.d[p.l_off + t * p.l_stride + e];
        taken[e] = 0u;
    }
    barrier();
    if ((p.flags & TOPK_FIRST) == 0u) {
        float m = -1.0 / 0.0;
        for (uint e = tid; e < p.E; e += 128u) m = max(m, val[e]);
        rv[tid] = m;
        barrier();
        for (uint h = 64u; h > 0u; h >>= 1) {
            if (tid < h) rv[tid] = max(rv[tid], rv[tid + h]);
            barrier();
        }
        float mx = rv[0];
        barrier();
        float s = 0.0;
        for (uint e = tid; e < p.E; e += 128u) s += (val[e] = exp(val[e] - mx));
        rv[tid] = s;
        barrier();
        for (uint h = 64u; h > 0u; h >>= 1) {
            if (tid < h) rv[tid] += rv[tid + h];
            barrier();
        }
        float sum = rv[0];
        barrier();
        for (uint e = tid; e < p.E; e += 128u) val[e] /= sum;
        barrier();
    }
    for (uint j = 0u; j < p.k; j++) {
        float bv = 0.0;
        uint bi = NONE;
        for (uint e = tid; e < p.E; e += 128u) // ascending e: a strict > keeps the lower index
            if (taken[e] == 0u && b_wins(bv, bi, val[e], e)) { bv = val[e]; bi = e; }
        rv[tid] = bv;
        ri[tid] = bi;
        barrier();
        for (uint h = 64u; h > 0u; h >>= 1) {
            if (tid < h && b_wins(rv[tid], ri[tid], rv[tid + h], ri[tid + h])) {
                rv[tid] = rv[tid + h];
                ri[tid] = ri[tid + h];
            }
            barrier();
        }
        if (tid == 0u) {
            sel[j] = ri[0];
            taken[ri[0]] = 1u;
        }
        barrier();
    }
    if (tid != 0u) return;
    float w[64];
    float tot = 0.0;
    if ((p.flags & TOPK_FIRST) != 0u) {
        float mx = val[sel[0]];
        for (uint j = 0u; j < p.k; j++) tot += (w[j] = exp(val[sel[j]] - mx));
        for (uint j = 0u; j < p.k; j++) w[j] /= tot;
    } else {
        for (uint j = 0u; j < p.k; j++) tot += (w[j] = val[sel[j]]);
        if ((p.flags & NORM) != 0u)
            for (uint j = 0u; j < p.k; j++) w[j] /= tot;
    }
    for (uint j = 0u; j < p.k; j++) {
        ids.d[p.i_off + t * p.i_stride + j] = int(sel[j]);
        wt.d[p.w_off + t * p.w_stride + j] = w[j];
    }
    if (p.has_gate != 0u) wt.d[p.w_off + t * p.w_stride + p.k] = 1.0 / (1.0 + exp(-gate.d[p.g_off + t * p.g_stride]));
}
