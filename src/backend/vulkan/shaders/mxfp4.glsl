// MXFP4 weights (backend.h's BE_MXFP4, gpt-oss's experts): rows of 17-byte blocks of 32 elements, an
// e8m0 scale byte (2^(e - 127)) and then 16 bytes of FP4 e2m1 codes, element 2j in the low nibble of
// byte j. Blocks start at any byte, so the including shader binds the weights as uint[] (a buffer `w`
// with member `d`) and bytes are picked out of little-endian 32-bit words. Every read stays within
// the words that hold the block's own bytes: none past the tensor's last byte's word.

// The 32 bits that start at byte address a (any alignment).
uint mx_word(uint a) {
    uint s = (a & 3u) * 8u, lo = w.d[a >> 2];
    if (s == 0u) return lo;
    return (lo >> s) | (w.d[(a >> 2) + 1u] << (32u - s));
}

// 2^(e - 127) as the CPU decodes it: e = 0 is the subnormal 2^-127 (a device that flushes subnormals
// reads 0 there), e = 255 is inf.
float mx_scale(uint e) { return uintBitsToFloat(e == 0u ? 0x00400000u : e << 23); }

// The e2m1 values of four codes: magnitude {0, 0.5, 1, 1.5, 2, 3, 4, 6} from its 3 bits (2 exponent
// bits of bias 1, 1 mantissa bit; m >= 2 is the f32 exponent (m >> 1) + 126 with that mantissa bit),
// then the sign bit.
vec4 mx_e2m1(uvec4 c) {
    uvec4 m = c & 7u;
    uvec4 bits = mix((m << 22) + 0x3f000000u, m * 0x3f000000u, lessThan(m, uvec4(2u)));
    return uintBitsToFloat(bits | ((c & 8u) << 28));
}

// The 8 elements of one 32-bit word of codes, in order (element i is nibble i).
void mx_decode8(uint u, out vec4 lo, out vec4 hi) {
    lo = mx_e2m1((uvec4(u) >> uvec4(0u, 4u, 8u, 12u)) & 15u);
    hi = mx_e2m1((uvec4(u) >> uvec4(16u, 20u, 24u, 28u)) & 15u);
}

// The block at byte a: its scale and its 32 unscaled values (v[i] holds elements 4i .. 4i + 3). The
// block spans exactly five words from a >> 2, whatever a's alignment.
void mx_block(uint a, out float scale, out vec4 v[8]) {
    uint i0 = a >> 2, sh = a & 3u;
    uint w0 = w.d[i0], w1 = w.d[i0 + 1u], w2 = w.d[i0 + 2u], w3 = w.d[i0 + 3u], w4 = w.d[i0 + 4u];
    scale = mx_scale((w0 >> (8u * sh)) & 255u);
    uvec4 c; // the 16 code bytes as 4 words: they start at byte sh + 1 of the five
    if (sh == 3u) {
        c = uvec4(w1, w2, w3, w4);
    } else {
        uint r = 8u * (sh + 1u), l = 32u - r;
        c = uvec4((w0 >> r) | (w1 << l), (w1 >> r) | (w2 << l), (w2 >> r) | (w3 << l), (w3 >> r) | (w4 << l));
    }
    [[unroll]] for (uint i = 0u; i < 4u; i++) mx_decode8(c[i], v[2u * i], v[2u * i + 1u]);
}
