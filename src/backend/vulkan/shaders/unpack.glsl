// Included after a shader declares its dtype constant T: the values of one 16-byte load, 8 f16/bf16
// values or 4 f32 (f[4..7] = 0).
void unpack8(uvec4 u, out float f[8]) {
    if (T == DT_F32) {
        f[0] = uintBitsToFloat(u.x); f[1] = uintBitsToFloat(u.y); f[2] = uintBitsToFloat(u.z); f[3] = uintBitsToFloat(u.w);
        f[4] = 0.0; f[5] = 0.0; f[6] = 0.0; f[7] = 0.0;
    } else if (T == DT_F16) {
        vec2 a = unpackHalf2x16(u.x), b = unpackHalf2x16(u.y), c = unpackHalf2x16(u.z), d = unpackHalf2x16(u.w);
        f[0] = a.x; f[1] = a.y; f[2] = b.x; f[3] = b.y; f[4] = c.x; f[5] = c.y; f[6] = d.x; f[7] = d.y;
    } else {
        f[0] = bf16_lo(u.x); f[1] = bf16_hi(u.x); f[2] = bf16_lo(u.y); f[3] = bf16_hi(u.y);
        f[4] = bf16_lo(u.z); f[5] = bf16_hi(u.z); f[6] = bf16_lo(u.w); f[7] = bf16_hi(u.w);
    }
}
