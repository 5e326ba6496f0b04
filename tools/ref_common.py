"""Shared by the torch-free float64 references (tools/ref_dense_families.py, ref_moe_families.py,
ref_gptoss.py): a safetensors writer, f32 rounding, and the matrix / RMSNorm arithmetic of a forward
pass over Python lists."""
import json
import math
import struct


def save_st(path, tensors):
    """tensors: name -> (shape, f32 values) or (dtype "F32" | "U8", shape, values)."""
    hdr, off, blobs = {}, 0, []
    for name, t in tensors.items():
        dt, shape, vals = t if len(t) == 3 else ("F32",) + tuple(t)
        b = struct.pack("<%df" % len(vals), *vals) if dt == "F32" else bytes(vals)
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def f32(x):
    """x rounded to the nearest float32."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def rows(shape, v):
    """A flat tensor as a list of rows (a vector as it is)."""
    if len(shape) == 1:
        return v
    return [v[i * shape[-1]:(i + 1) * shape[-1]] for i in range(len(v) // shape[-1])]


def mm(x, w, b=None):
    """x @ w^T (+ b) for one row x and a list of weight rows w."""
    y = [sum(a * c for a, c in zip(x, row)) for row in w]
    return [u + v for u, v in zip(y, b)] if b else y


def rmsnorm(x, w, eps, offset=0.0):
    """x / rms(x) * (w + offset)."""
    r = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [v * r * (wi + offset) for v, wi in zip(x, w)]
