// Shared by every shader: dtype decoding of 32-bit words and f32 -> f16/bf16
// encoding with round-to-nearest-even (the CPU's base/half.h, bit for bit).
// Weights and caches are bound as uint[] so that f16 and bf16 need no 16-bit
// storage feature (MoltenVK and lavapipe lack a bf16 type): element i of a
// 16-bit tensor is half (i & 1) of word i >> 1, little-endian.
#define DT_F32 0u
#define DT_F16 1u
#define DT_BF16 2u

float bf16_lo(uint w) { return uintBitsToFloat(w << 16); }
float bf16_hi(uint w) { return uintBitsToFloat(w & 0xffff0000u); }

// Element i of buffer B (a uint[] member named d) in dtype T.
#define LOADT(B, T, i)                                                                          \
    ((T) == DT_F32 ? uintBitsToFloat(B.d[i])                                                   \
                   : ((T) == DT_F16 ? unpackHalf2x16(B.d[(i) >> 1])[(i) & 1u]                  \
                                    : ((((i) & 1u) != 0u) ? bf16_hi(B.d[(i) >> 1]) : bf16_lo(B.d[(i) >> 1]))))

// Element i of buffer B bound as uvec4[] (member d) in dtype T: for shaders that load 16 bytes at a time
// and need single elements on their unaligned path.
#define LOADT4(B, T, i)                                                                         \
    ((T) == DT_F32 ? uintBitsToFloat(B.d[(i) >> 2][(i) & 3u])                                  \
                   : ((T) == DT_F16 ? unpackHalf2x16(B.d[(i) >> 3][((i) >> 1) & 3u])[(i) & 1u]   \
                                    : ((((i) & 1u) != 0u) ? bf16_hi(B.d[(i) >> 3][((i) >> 1) & 3u]) \
                                                          : bf16_lo(B.d[(i) >> 3][((i) >> 1) & 3u]))))

uint f32_to_bf16(float f) {
    uint u = floatBitsToUint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16) | 0x40u) & 0xffffu;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}

uint f32_to_f16(float f) {
    uint u = floatBitsToUint(f);
    uint sign = (u >> 16) & 0x8000u;
    uint a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u;
    if (a < 0x38800000u) {
        if (a < 0x33000000u) return sign;
        uint e = a >> 23;
        uint m = (a & 0x7fffffu) | 0x800000u;
        uint shift = 126u - e;
        uint half_ = 1u << (shift - 1u);
        uint r = m >> shift;
        uint rem = m & ((1u << shift) - 1u);
        if (rem > half_ || (rem == half_ && (r & 1u) != 0u)) r++;
        return sign | r;
    }
    uint r = a + 0xfffu + ((a >> 13) & 1u);
    return sign | ((r - 0x38000000u) >> 13);
}

uint f32_to_t(float f, uint T) { return T == DT_F16 ? f32_to_f16(f) : f32_to_bf16(f); }

// Workgroups beyond 65535 in x continue in y.
uint flat_group() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

// tanh with its argument clamped to +-15 (where it is 1 in f32), so no implementation overflows
float tanh_c(float v) { return tanh(clamp(v, -15.0, 15.0)); }

// silu(g) * u and gelu_tanh(g) * u (HF's gelu_pytorch_tanh): silu_mul / gelu_tanh_mul of backend.h, one
// formula for eltwise.comp and matvec_sg.comp's fused gate/up
float silu_mul1(float g, float u) { return g / (1.0 + exp(-g)) * u; }
float gelu_tanh_mul1(float g, float u) {
    return 0.5 * g * (1.0 + tanh_c(0.7978845608028654 * (g + 0.044715 * (g * g * g)))) * u;
}
