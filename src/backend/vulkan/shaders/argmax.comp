#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// out[row] = the index of the largest element of x's row: the first of equal ones; a NaN never counts,
// except that a NaN first element gives 0 (backend.h's argmax: what the engine's left-to-right greedy
// scan gives). One workgroup per row: each invocation scans a stride of the row (16-byte loads, eight in
// flight, where rows lie on 16 bytes) keeping its first
// maximum, then the subgroups' (value, lowest index) pairs meet in shared memory.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 0) readonly buffer X4 { vec4 d[]; } x4;
layout(std430, binding = 1) writeonly buffer O { int d[]; } o;
layout(push_constant) uniform P { uint x_off, x_stride, o_off, V, vec; } p;
shared float sv[32]; // per subgroup (subgroups of 8 or more invocations)
shared uint si[32];
const uint NONE = 0xffffffffu;

void main() {
    uint row = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x, base = p.x_off + row * p.x_stride;
    float best = -1.0 / 0.0;
    uint bi = NONE;
    uint i0 = 0u;
    if (p.vec != 0u) { // 16-byte loads, eight in flight per invocation: one row is 0.5 MB for 128k words
        uint nv = p.V / 4u, b4 = base / 4u;
        for (uint v0 = 0u; v0 < nv; v0 += 8u * 256u) {
            vec4 r[8];
            [[unroll]] for (uint j = 0u; j < 8u; j++) r[j] = x4.d[b4 + min(v0 + j * 256u + tid, nv - 1u)];
            [[unroll]] for (uint j = 0u; j < 8u; j++) {
                uint e = (v0 + j * 256u + tid) * 4u; // grows with j and with the loop: the first equal stays
                if (e >= p.V) break;
                [[unroll]] for (uint c = 0u; c < 4u; c++)
                    if (r[j][c] > best || (r[j][c] == best && bi == NONE)) {
                        best = r[j][c];
                        bi = e + c;
                    }
            }
        }
        i0 = nv * 4u; // the last V % 4 elements: after every vector one
    }
    for (uint i = i0 + tid; i < p.V; i += 256u) {
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
