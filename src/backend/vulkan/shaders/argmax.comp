#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// out[row] = the index of the largest element of x's row: the first of equal ones; a NaN never counts,
// except that a NaN first element gives 0 (backend.h's argmax: what the engine's left-to-right greedy
// scan gives). One workgroup per row: each invocation scans a stride of the row keeping its first
// maximum, then the subgroups' (value, lowest index) pairs meet in shared memory.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 1) writeonly buffer O { int d[]; } o;
layout(push_constant) uniform P { uint x_off, x_stride, o_off, V; } p;
shared float sv[32]; // per subgroup (subgroups of 8 or more invocations)
shared uint si[32];
const uint NONE = 0xffffffffu;

void main() {
    uint row = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x, base = p.x_off + row * p.x_stride;
    float best = -1.0 / 0.0;
    uint bi = NONE;
    for (uint i = tid; i < p.V; i += 256u) {
        float v = x.d[base + i];
        if (v > best || (v == best && bi == NONE)) { // i only grows: the first equal one stays
            best = v;
            bi = i;
        }
    }
    float m = subgroupMax(best); // never NaN: best starts at -inf and a NaN never replaces it
    uint mi = subgroupMin(best == m ? bi : NONE);
    if (subgroupElect()) {
        sv[gl_SubgroupID] = m;
        si[gl_SubgroupID] = mi;
    }
    barrier();
    if (tid == 0u) {
        float b = sv[0];
        uint bidx = si[0];
        for (uint s = 1u; s < gl_NumSubgroups; s++)
            if (sv[s] > b || (sv[s] == b && si[s] < bidx)) {
                b = sv[s];
                bidx = si[s];
            }
        float first = x.d[base];
        o.d[p.o_off + row] = isnan(first) || bidx == NONE ? 0 : int(bidx);
    }
}
