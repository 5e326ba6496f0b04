#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// Expert matmul by device-made ids (backend.h moe_matmul_ids), for a decode step's few pairs. Workgroup
// y = s takes pair s's expert e, unless an earlier pair has e (that workgroup serves it) or e lies outside
// this dispatch's experts; it collects every pair of e and streams e's weight rows once for up to NP of
// them at a time, so each active expert's weights are read once per step, with no sort on the host.
// One subgroup per weight row (RPW rows per workgroup), lanes across K, one subgroupAdd per pair.
// Weights f32/f16/bf16 (16-byte loads where `vec`, else one element per lane, as matvec_sg/matvec) or
// MXFP4 (T = 3: lanes take whole 32-element blocks, as matvec_mx; w_off, w_estride and w_stride in
// bytes). A dispatch covers the experts [e0, e0 + ne) that lie in its weight binding at equal steps
// (w_estride); x row of pair q: q / x_div.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;   // DT_F32, DT_F16, DT_BF16, or 3: MXFP4
layout(constant_id = 1) const uint RPW = 4; // rows per workgroup (128 / subgroup size)
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 0) readonly buffer X4 { vec4 d[]; } x4;
layout(std430, binding = 1) readonly buffer W { uint d[]; } w;
layout(std430, binding = 1) readonly buffer W4 { uvec4 d[]; } w4;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) readonly buffer I { int d[]; } ids;
layout(std430, binding = 4) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, x_div, w_off, w_estride, w_stride, b_off, b_stride, has_bias, i_off, i_stride, k, A;
    uint o_off, o_stride, K, M, e0, ne, vec;
} p;

const uint DT_MX = 3u, NP = 4u; // pairs per pass over a row
const uint EL = T == DT_F32 ? 4u : 8u; // elements per 16-byte load

#include "mxfp4.glsl"
#include "unpack.glsl"

shared uint plist[256]; // the pairs of this workgroup's expert (BE_MOE_MAX_PAIRS)
shared uint pcnt, dup;

int pair_id(uint q) { return ids.d[p.i_off + (q / p.k) * p.i_stride + q % p.k]; }

uint xrow(uint j) { return p.x_off + (plist[j] / p.x_div) * p.x_stride; }

// acc[j] += row m of expert e (at word/byte base rb) . x of pairs c0 + j < cnt
void row_dots(uint rb, uint c0, uint cnt, inout float acc[NP]) {
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    if (T == DT_MX) {
        for (uint b = lane; b < p.K / 32u; b += S) {
            float sc;
            vec4 wv[8];
            mx_block(rb + 17u * b, sc, wv);
            [[unroll]] for (uint j = 0u; j < NP; j++) {
                if (c0 + j >= cnt) continue;
                uint xb = xrow(c0 + j) + 32u * b;
                float s = 0.0;
                if (p.vec != 0u) {
                    [[unroll]] for (uint i = 0u; i < 8u; i++) s += dot(wv[i], x4.d[(xb >> 2) + i]);
                } else {
                    [[unroll]] for (uint i = 0u; i < 8u; i++)
                        s += dot(wv[i], vec4(x.d[xb + 4u * i], x.d[xb + 4u * i + 1u], x.d[xb + 4u * i + 2u],
                                             x.d[xb + 4u * i + 3u]));
                }
                acc[j] += sc * s;
            }
        }
    } else if (p.vec != 0u) {
        for (uint kk = lane * EL; kk < p.K; kk += S * EL) {
            float f[8];
            unpack8(w4.d[(rb + kk) / EL], f);
            [[unroll]] for (uint j = 0u; j < NP; j++) {
                if (c0 + j >= cnt) continue;
                uint xb = (xrow(c0 + j) + kk) >> 2;
                float s = dot(vec4(f[0], f[1], f[2], f[3]), x4.d[xb]);
                if (EL == 8u) s += dot(vec4(f[4], f[5], f[6], f[7]), x4.d[xb + 1u]);
                acc[j] += s;
            }
        }
    } else {
        for (uint kk = lane; kk < p.K; kk += S) {
            float wv = LOADT(w, T, rb + kk);
            [[unroll]] for (uint j = 0u; j < NP; j++)
                if (c0 + j < cnt) acc[j] += wv * x.d[xrow(c0 + j) + kk];
        }
    }
}

void main() {
    uint s = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    if (tid == 0u) { pcnt = 0u; dup = 0u; }
    barrier();
    int es = pair_id(s);
    if (es < int(p.e0) || es >= int(p.e0 + p.ne)) return; // the same for the whole workgroup
    for (uint q = tid; q < p.A; q += 128u) {
        if (pair_id(q) != es) continue;
        if (q < s) atomicOr(dup, 1u);
        else plist[atomicAdd(pcnt, 1u)] = q;
    }
    barrier();
    if (dup != 0u) return;
    uint cnt = pcnt, e = uint(es) - p.e0, lane = gl_SubgroupInvocationID;
    for (uint r = gl_SubgroupID; r < RPW; r += gl_NumSubgroups) {
        uint m = gl_WorkGroupID.x * RPW + r;
        if (m >= p.M) break; // uniform across the subgroup
        uint rb = p.w_off + e * p.w_estride + m * p.w_stride;
        for (uint c0 = 0u; c0 < cnt; c0 += NP) {
            float acc[NP] = float[NP](0.0, 0.0, 0.0, 0.0);
            row_dots(rb, c0, cnt, acc);
            [[unroll]] for (uint j = 0u; j < NP; j++) {
                float v = subgroupAdd(acc[j]);
                if (lane == 0u && c0 + j < cnt) {
                    if (p.has_bias != 0u) v += bias.d[p.b_off + uint(es) * p.b_stride + m];
                    o.d[p.o_off + plist[c0 + j] * p.o_stride + m] = v;
                }
            }
        }
    }
}
