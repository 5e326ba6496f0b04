#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// out[t, m] = x[t, :] . w[m, :] (+ bias[m]) for few tokens (decode) with MXFP4 weights (mxfp4.glsl):
// one subgroup per weight row, each lane taking whole 32-element blocks (lane, lane + S, ...): it reads
// the block's five words once, decodes its codes once for every token, sums code x activation in f32
// and multiplies the sum by the block's power-of-two scale (exact, as the CPU's decoded weights are);
// then one subgroupAdd per token. RPW rows per workgroup, whatever subgroup size the device picks.
// w_off and w_stride are in bytes; K is a multiple of 32.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint NT = 1;  // tokens: 1, 2, 4 or 8
layout(constant_id = 1) const uint RPW = 4; // rows per workgroup (128 / subgroup size)
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 0) readonly buffer X4 { vec4 d[]; } x4;
layout(std430, binding = 1) readonly buffer W { uint d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M, xvec;
} p;

#include "mxfp4.glsl"

// Token j's 32 activations from k (xvec: 16-byte loads, x's offset and stride are multiples of 4).
void x_block(uint j, uint k, out vec4 xv[8]) {
    uint b = p.x_off + j * p.x_stride + k;
    if (p.xvec != 0u) {
        [[unroll]] for (uint i = 0u; i < 8u; i++) xv[i] = x4.d[(b >> 2) + i];
    } else {
        [[unroll]] for (uint i = 0u; i < 8u; i++)
            xv[i] = vec4(x.d[b + 4u * i], x.d[b + 4u * i + 1u], x.d[b + 4u * i + 2u], x.d[b + 4u * i + 3u]);
    }
}

void main() {
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize, nb = p.K / 32u;
    for (uint r = gl_SubgroupID; r < RPW; r += gl_NumSubgroups) {
        uint m = flat_group() * RPW + r;
        if (m >= p.M) break; // uniform across the subgroup
        float acc[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        uint row = p.w_off + m * p.w_stride;
        for (uint b = lane; b < nb; b += S) {
            float sc;
            vec4 wv[8];
            mx_block(row + 17u * b, sc, wv);
            [[unroll]] for (uint j = 0u; j < NT; j++) { // NT is a constant: acc stays in registers
                if (j >= p.n) continue;
                vec4 xv[8];
                x_block(j, 32u * b, xv);
                float s = 0.0;
                [[unroll]] for (uint i = 0u; i < 8u; i++) s += dot(wv[i], xv[i]);
                acc[j] += sc * s;
            }
        }
        [[unroll]] for (uint j = 0u; j < NT; j++) {
            float v = subgroupAdd(acc[j]);
            if (lane == 0u && j < p.n) {
                if (p.has_bias != 0u) v += bias.d[p.b_off + m];
                o.d[p.o_off + j * p.o_stride + m] = v;
            }
        }
    }
}
