#version 450
#extension GL_GOOGLE_include_directive : require
// OP 0: out = a + b; OP 1: out = silu(a) * b. Rows of F elements; in place
// (out == a) is allowed.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0;
layout(std430, binding = 0) readonly buffer A { float d[]; } a;
layout(std430, binding = 1) readonly buffer B { float d[]; } b;
layout(std430, binding = 2) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint a_off, a_stride, b_off, b_stride, o_off, o_stride, n, F;
} p;
void main() {
    uint r = gl_WorkGroupID.y, c = gl_GlobalInvocationID.x;
    if (r >= p.n || c >= p.F) return;
    float av = a.d[p.a_off + r * p.a_stride + c], bv = b.d[p.b_off + r * p.b_stride + c];
    o.d[p.o_off + r * p.o_stride + c] = OP == 0u ? av + bv : av / (1.0 + exp(-av)) * bv;
}
