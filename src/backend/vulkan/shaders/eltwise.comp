#version 450
#extension GL_GOOGLE_include_directive : require
// OP 0: out = a + b; OP 1: out = silu(a) * b; OP 2: out = gelu_tanh(a) * b
// (GeGLU); OP 3: out = a * s; OP 4: out = tanh(a / s) * s (soft-capping);
// OP 5: gpt-oss's clamped SwiGLU of a's interleaved columns (gate 2c, up 2c + 1;
// s = alpha, s2 = limit; b unused).
// Rows of F elements; in place (out == a) is allowed. tanh's argument is
// clamped to +-15 (tanh is 1 in f32 there) so no implementation overflows.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0;
layout(std430, binding = 0) readonly buffer A { float d[]; } a;
layout(std430, binding = 1) readonly buffer B { float d[]; } b;
layout(std430, binding = 2) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint a_off, a_stride, b_off, b_stride, o_off, o_stride, n, F;
    float s, s2;
} p;
void main() {
    uint r = gl_WorkGroupID.y, c = gl_GlobalInvocationID.x;
    if (r >= p.n || c >= p.F) return;
    if (OP == 5u) { // as the CPU: min and clamp written as comparisons keep a NaN, as torch's clamp does
        float g = a.d[p.a_off + r * p.a_stride + 2u * c], u = a.d[p.a_off + r * p.a_stride + 2u * c + 1u];
        g = g > p.s2 ? p.s2 : g;
        u = u > p.s2 ? p.s2 : (u < -p.s2 ? -p.s2 : u);
        o.d[p.o_off + r * p.o_stride + c] = (u + 1.0) * (g / (1.0 + exp(-g * p.s)));
        return;
    }
    float av = a.d[p.a_off + r * p.a_stride + c], y;
    if (OP == 3u) y = av * p.s;
    else if (OP == 4u) y = tanh_c(av / p.s) * p.s;
    else {
        float bv = b.d[p.b_off + r * p.b_stride + c];
        if (OP == 0u) y = av + bv;
        else if (OP == 1u) y = silu_mul1(av, bv);
        else y = gelu_tanh_mul1(av, bv);
    }
    o.d[p.o_off + r * p.o_stride + c] = y;
}
