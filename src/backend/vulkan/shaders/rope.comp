#version 450
#extension GL_GOOGLE_include_directive : require
// Rotary embedding in place, rotate_half pairing (i, i + rot_dim/2). The angle
// is pos * inv_freq in f32, as HF computes it; it is reduced to [-pi, pi] in
// two steps before cos/sin, since GPU cos/sin lose accuracy on large arguments.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer X { float d[]; } x;
layout(std430, binding = 1) readonly buffer Pos { int d[]; } pos;
layout(std430, binding = 2) readonly buffer F { float d[]; } fr;
layout(push_constant) uniform P {
    uint x_off, x_stride, p_off, f_off, n, heads, head_dim, rot_dim;
    float mscale; // cos and sin multiplied by it (longrope's attention factor)
} p;
void main() {
    uint half_ = p.rot_dim / 2u;
    uint t = gl_WorkGroupID.y, e = gl_GlobalInvocationID.x;
    if (t >= p.n || e >= p.heads * half_) return;
    uint h = e / half_, i = e % half_;
    float ang = float(pos.d[p.p_off + t]) * fr.d[p.f_off + i];
    float k = floor(ang * 0.15915494309189535 + 0.5);
    float r = (ang - k * 6.28125) - k * 0.0019353071795864769;
    float cs = cos(r) * p.mscale, sn = sin(r) * p.mscale;
    uint b = p.x_off + t * p.x_stride + h * p.head_dim + i;
    float x0 = x.d[b], x1 = x.d[b + half_];
    x.d[b] = x0 * cs - x1 * sn;
    x.d[b + half_] = x1 * cs + x0 * sn;
}
