#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// out[row] = the index of the largest element of x's row: the first of equal ones; a NaN never counts,
// except that a NaN first element gives 0 (backend.h's argmax: what the engine's left-to-right greedy
// scan gives). Two passes for long rows (a 128k vocabulary): stage 1, a workgroup per 8,192-element
// slice of a row (grid: slices x rows) keeps the slice's first maximum as (value, index) in scratch;
// stage 2, a workgroup per row picks the largest of its slices' pairs, the lowest index among equal
// ones. Stage 0 does a whole row in one workgroup (short rows). Each invocation scans with 16-byte
// loads, eight in flight, where rows lie on 16 bytes; the subgroups' (value, lowest index) pairs meet in
// shared memory.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 0) readonly buffer X4 { vec4 d[]; } x4;
layout(std430, binding = 1) writeonly buffer O { int d[]; } o;
layout(std430, binding = 2) buffer S { vec2 d[]; } sc; // stage 1 -> 2: [row][slice] (value, index bits)
layout(push_constant) uniform P { uint x_off, x_stride, o_off, V, vec, stage, G; } p;
shared float sv[32]; // per subgroup (subgroups of 8 or more invocations)
shared uint si[32];
const uint NONE = 0xffffffffu;
const uint SLICE = 8192u; // 256 invocations x 8 loads x 4 floats

// keep (v, i) if it beats (best, bi): larger, or equal with no index yet (indexes only grow per invocation)
void take(float v, uint i, inout float best, inout uint bi) {
    if (v > best || (v == best && bi == NONE)) {
        best = v;
        bi = i;
    }
}

// The first maximum of elements [lo, hi) of the row at `base` among this invocation's share.
void scan(uint base, uint lo, uint hi, uint tid, inout float best, inout uint bi) {
    uint i0 = lo;
    if (p.vec != 0u) {
        uint nv = (hi - lo) / 4u, b4 = (base + lo) / 4u;
        for (uint v0 = 0u; v0 < nv; v0 += 8u * 256u) {
            vec4 r[8];
            [[unroll]] for (uint j = 0u; j < 8u; j++) r[j] = x4.d[b4 + min(v0 + j * 256u + tid, nv - 1u)];
            [[unroll]] for (uint j = 0u; j < 8u; j++) {
                uint e = (v0 + j * 256u + tid) * 4u; // grows with j and with the loop: the first equal stays
                if (e >= nv * 4u) break;
                [[unroll]] for (uint c = 0u; c < 4u; c++) take(r[j][c], lo + e + c, best, bi);
            }
        }
        i0 = lo + nv * 4u; // the last (hi - lo) % 4 elements: after every vector one
    }
    for (uint i = i0 + tid; i < hi; i += 256u) take(x.d[base + i], i, best, bi);
}

// The workgroup's best (value, lowest index) into sv[0], si[0] (every invocation's pair taken).
void reduce(float best, uint bi, uint tid) {
    float m = subgroupMax(best); // never NaN: best starts at -inf and a NaN never replaces it
    uint mi = subgroupMin(best == m ? bi : NONE);
    if (subgroupElect()) {
        sv[gl_SubgroupID] = m;
        si[gl_SubgroupID] = mi;
    }
    barrier();
    if (tid == 0u) {
        for (uint s = 1u; s < gl_NumSubgroups; s++)
            if (sv[s] > sv[0] || (sv[s] == sv[0] && si[s] < si[0])) {
                sv[0] = sv[s];
                si[0] = si[s];
            }
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint row = p.stage == 1u ? gl_WorkGroupID.y : gl_WorkGroupID.x, base = p.x_off + row * p.x_stride;
    float best = -1.0 / 0.0;
    uint bi = NONE;
    if (p.stage == 2u) {
        for (uint g = tid; g < p.G; g += 256u) { // slices in order: the first of equal maxima stays
            vec2 s = sc.d[row * p.G + g];
            uint i = floatBitsToUint(s.y);
            if (i != NONE && (s.x > best || (s.x == best && bi == NONE))) {
                best = s.x;
                bi = i;
            }
        }
    } else {
        uint lo = p.stage == 1u ? gl_WorkGroupID.x * SLICE : 0u;
        scan(base, lo, p.stage == 1u ? min(lo + SLICE, p.V) : p.V, tid, best, bi);
    }
    reduce(best, bi, tid);
    if (tid != 0u) return;
    if (p.stage == 1u) {
        sc.d[row * p.G + gl_WorkGroupID.x] = vec2(sv[0], uintBitsToFloat(si[0]));
        return;
    }
    float first = x.d[base];
    o.d[p.o_off + row] = isnan(first) || si[0] == NONE ? 0 : int(si[0]);
}
