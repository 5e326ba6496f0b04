#version 450
// The split-K partial sums of matmul_coop.comp (few tokens: split along K so that enough
// workgroups stream the weight): out[t, m] = bias[m] + sum_z part[z, t, m].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer SC { float d[]; } part;
layout(std430, binding = 1) readonly buffer B { float d[]; } bias;
layout(std430, binding = 2) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P { uint n, M, S, b_off, has_bias, o_off, o_stride; } p;
void main() {
    uint m = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (m >= p.M) return;
    float v = 0.0;
    for (uint z = 0u; z < p.S; z++) v += part.d[(z * p.n + t) * p.M + m];
    if (p.has_bias != 0u) v += bias.d[p.b_off + m];
    o.d[p.o_off + t * p.o_stride + m] = v;
}
