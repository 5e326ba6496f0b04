#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// The k largest elements of each row of x with their indexes, best first (ties: the lower index first; a
// NaN counts as -inf): backend.h's topk. Stage 1: a workgroup per 4,096-element slice of a row (grid:
// slices x rows) picks the slice's k best into scratch ([row][slice][k] as (value, index bits); (-inf,
// NONE) where a slice has fewer). Stage 2: a workgroup per row picks the k best of its slices' lists into
// ids and vals. A pick is one round over the workgroup: every invocation holds 16 elements in registers
// and offers its best among those ranked after the previous pick; subgroupMax/subgroupMin and shared
// memory give the workgroup's (one barrier a round, the shared pairs alternating between two sets).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 1) writeonly buffer I { int d[]; } oi;
layout(std430, binding = 2) writeonly buffer W { float d[]; } ov;
layout(std430, binding = 3) buffer S { vec2 d[]; } sc;
layout(push_constant) uniform P { uint x_off, x_stride, i_off, i_stride, v_off, v_stride, V, K, G, stage; } p;
const uint NONE = 0xffffffffu;
const uint PER = 16u;          // elements per invocation
const uint SLICE = 256u * PER; // a stage-1 workgroup's elements; stage 2 takes G * K <= SLICE candidates
shared float sv[2][32];        // per subgroup (subgroups of 8 or more invocations), two rounds' sets
shared uint si[2][32];

// (a, ai) ranks before (b, bi): larger, or equal with a lower index
bool before(float a, uint ai, float b, uint bi) { return a > b || (a == b && ai < bi); }

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint row = p.stage == 1u ? gl_WorkGroupID.y : gl_WorkGroupID.x;
    float v[PER];
    uint ix[PER];
    if (p.stage == 1u) {
        uint lo = gl_WorkGroupID.x * SLICE, base = p.x_off + row * p.x_stride;
        [[unroll]] for (uint j = 0u; j < PER; j++) {
            uint i = lo + j * 256u + tid;
            float f = i < p.V ? x.d[base + i] : 0.0;
            v[j] = isnan(f) ? -1.0 / 0.0 : f;
            ix[j] = i < p.V ? i : NONE;
        }
    } else {
        uint nc = p.G * p.K;
        [[unroll]] for (uint j = 0u; j < PER; j++) {
            uint c = j * 256u + tid;
            vec2 s = c < nc ? sc.d[row * nc + c] : vec2(0.0, uintBitsToFloat(NONE));
            v[j] = s.x;
            ix[j] = floatBitsToUint(s.y);
        }
    }
    float pv = 0.0;
    uint pi = NONE; // the previous pick (NONE: none yet)
    for (uint r = 0u; r < p.K; r++) {
        float bv = -1.0 / 0.0;
        uint bi = NONE;
        [[unroll]] for (uint j = 0u; j < PER; j++) {
            bool after = pi == NONE || before(pv, pi, v[j], ix[j]);
            if (ix[j] != NONE && after && (bi == NONE || before(v[j], ix[j], bv, bi))) {
                bv = v[j];
                bi = ix[j];
            }
        }
        float m = subgroupMax(bv); // -inf where an invocation has none left: its NONE loses to any index
        uint mi = subgroupMin(bv == m ? bi : NONE);
        uint par = r & 1u;
        if (subgroupElect()) {
            sv[par][gl_SubgroupID] = m;
            si[par][gl_SubgroupID] = mi;
        }
        barrier();
        float wv = sv[par][0];
        uint wi = si[par][0];
        for (uint s = 1u; s < gl_NumSubgroups; s++)
            if (si[par][s] != NONE && (wi == NONE || before(sv[par][s], si[par][s], wv, wi))) {
                wv = sv[par][s];
                wi = si[par][s];
            }
        if (tid == 0u) {
            if (p.stage == 1u) {
                sc.d[(row * p.G + gl_WorkGroupID.x) * p.K + r] = vec2(wi == NONE ? 0.0 : wv, uintBitsToFloat(wi));
            } else {
                oi.d[p.i_off + row * p.i_stride + r] = wi == NONE ? 0 : int(wi);
                ov.d[p.v_off + row * p.v_stride + r] = wi == NONE ? -1.0 / 0.0 : wv;
            }
        }
        if (wi != NONE) { // else nothing is left: the later rounds write NONE too
            pv = wv;
            pi = wi;
        }
    }
}
