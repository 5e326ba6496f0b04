#version 450
// dst = src, 16 bytes per invocation per iteration (grid-stride): the device's
// memory bandwidth as shaders see it, which `vllmc bench` prints beside its figures.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer S { uvec4 d[]; } src;
layout(std430, binding = 1) writeonly buffer D { uvec4 d[]; } dst;
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) dst.d[i] = src.d[i];
}
