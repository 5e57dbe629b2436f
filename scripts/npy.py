#!/usr/bin/env python3
"""Writes or describes .npy files without numpy (tests and the demo).

  npy.py write PATH DTYPE SHAPE FILL   DTYPE int32|float32, SHAPE like 1x256
                                       (or scalar),
                                       FILL range (i mod 256), const:N or
                                       bytes:FILE:MOD (FILE's bytes mod MOD,
                                       repeated as needed)
  npy.py info PATH                     prints 'DTYPE SHAPE finite|nonfinite'
  npy.py compare A B RTOL              max |a - b| / max |b| over the arrays;
                                       exits 1 if shapes differ or it
                                       exceeds RTOL
"""
import math
import struct
import sys

CODES = {"int32": ("<i4", "i"), "float32": ("<f4", "f")}


def write(path, dtype, shape, fill):
    dims = [] if shape == "scalar" else [int(d) for d in shape.split("x")]
    count = math.prod(dims)
    descr, fmt = CODES[dtype]
    if fill == "range":
        values = [i % 256 for i in range(count)]
    elif fill.startswith("bytes:"):
        source, mod = fill[len("bytes:"):].rsplit(":", 1)
        data = open(source, "rb").read() or b"\0"
        values = [data[i % len(data)] % int(mod) for i in range(count)]
    else:
        values = [float(fill.split(":")[1])] * count
        if dtype == "int32":
            values = [int(v) for v in values]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else ""))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)))
        f.write(header.encode())
        f.write(struct.pack("<%d%s" % (count, fmt), *values))


def read(path):
    """(descr, shape, values) of a little-endian f4/i4 .npy file."""
    data = open(path, "rb").read()
    assert data[:6] == b"\x93NUMPY", "bad magic"
    length = struct.unpack("<H", data[8:10])[0]
    header = eval(data[10:10 + length].decode())  # a Python dict literal
    dims = header["shape"]
    count = math.prod(dims)
    code = {"<f4": "f", "<i4": "i"}[header["descr"]]
    values = struct.unpack("<%d%s" % (count, code), data[10 + length:])
    return header["descr"], dims, values


def info(path):
    descr, dims, values = read(path)
    finite = all(math.isfinite(v) for v in values)
    print(descr, "x".join(str(d) for d in dims),
          "finite" if finite else "nonfinite")


def compare(path_a, path_b, rtol):
    _, dims_a, a = read(path_a)
    _, dims_b, b = read(path_b)
    if dims_a != dims_b:
        print("shapes differ:", dims_a, dims_b)
        return 1
    scale = max((abs(v) for v in b), default=0.0) or 1.0
    error = max((abs(x - y) for x, y in zip(a, b)), default=0.0) / scale
    ok = math.isfinite(error) and error <= float(rtol)
    print("max relative difference %.3g (limit %s): %s" %
          (error, rtol, "ok" if ok else "TOO LARGE"))
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(*sys.argv[2:6])
    elif sys.argv[1] == "compare":
        sys.exit(compare(*sys.argv[2:5]))
    else:
        info(sys.argv[2])
