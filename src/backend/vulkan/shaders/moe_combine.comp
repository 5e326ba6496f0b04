#version 450
// Mixture of experts: out[r, c] = sum_{j < k} wt[r, j] * y[idx[r, j], c], j in order, in f32.
// One invocation per output element; an index outside y's rows adds nothing.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Y { float d[]; } y;
layout(std430, binding = 1) readonly buffer I { int d[]; } ids;
layout(std430, binding = 2) readonly buffer W { float d[]; } w;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint y_off, y_stride, y_rows, i_off, i_stride, w_off, w_stride, o_off, o_stride, n, D, k;
} p;
void main() {
    uint r = gl_WorkGroupID.y, c = gl_GlobalInvocationID.x;
    if (r >= p.n || c >= p.D) return;
    float s = 0.0;
    for (uint j = 0u; j < p.k; j++) {
        int id = ids.d[p.i_off + r * p.i_stride + j];
        if (id < 0 || uint(id) >= p.y_rows) continue;
        s += w.d[p.w_off + r * p.w_stride + j] * y.d[p.y_off + uint(id) * p.y_stride + c];
    }
    o.d[p.o_off + r * p.o_stride + c] = s;
}
