#!/usr/bin/env python3
"""GPU check and benchmark in one go: build, correctness, kernel report, times.

Meant for any machine with an NVIDIA GPU and the CUDA toolkit ($CUDA_HOME,
default /usr/local/cuda); it stops with the reason where there is none.

1. Builds the project (scripts/setup.sh) and runs the GPU tests
   (test/Target/Cuda: CPU and GPU agree on the tiny model and the 2-layer
   L 4096 model, to 1e-4 with f32 matmuls and 1e-2 with bf16 tensor-core
   matmuls; training on the GPU lowers the loss).
2. Assembles every kernel of the enwik8-style model with ptxas for sm_90a
   and reports the largest register count and the kernels that spill.
3. Times on the GPU, with reformer-run: @loss and @train_step of the
   2-layer L 16384 model and of the enwik8-style model (3 layers, d_model
   1024, 8 heads, d_ff 4096, 2 hashes, chunks of 128) at L 16384 and 65536,
   with bf16 tensor-core matmuls, with f32 matmuls and in mixed precision
   (bf16 matmuls and bf16 activations, f32 weights): tokens/s (kernels only, and with the copies of inputs and parameters)
   and the peak of the device memory pool.
4. LSH attention forward and backward alone, ours in bf16 (the fused
   tensor-core forward and gradient) and f32 (loop kernels), against PyTorch's
   scaled_dot_product_attention (causal, fp32 and bf16) at the same L, when
   PyTorch with CUDA is installed (pip install torch).
5. One dense matmul of the FFN's shape (16384 x 1024 . 1024 x 4096), ours
   in bf16 and f32 against torch.matmul (cuBLAS): the measurement that
   decides whether cuBLAS should take the dense matmuls.

Prints a table and writes it to bench/results/gpu.md.

Usage: bench/gpu.py [--build-dir build] [--runs 5] [--skip-build]
       [--lengths 16384,65536]
"""
import argparse
import ctypes
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from results_table import publish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPY = os.path.join(ROOT, "scripts", "npy.py")
CUDA_HOME = os.environ.get("CUDA_HOME", "/usr/local/cuda")
LIT = shutil.which("lit") or "/usr/lib/llvm-22/bin/lit"
CONFIGS = {("two-layer", 16384): "two-layer-16k.json",
           ("enwik8-3layer", 16384): "enwik8-3layer-16k.json",
           ("enwik8-3layer", 65536): "enwik8-3layer-64k.json"}


def mixed_config(path, tmp):
    """`path`'s config in mixed precision (bf16 activations, f32 weights)."""
    config = json.load(open(path))
    config.update(name=config["name"] + "_mixed", dtype="bf16",
                  param_dtype="f32")
    out = os.path.join(tmp, os.path.basename(path)[:-5] + "-mixed.json")
    json.dump(config, open(out, "w"))
    return out


def gpu_name():
    """The first GPU's name, or exits with why there is none."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        sys.exit(f"bench/gpu.py: no CUDA driver ({e})")
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) \
            or count.value == 0:
        sys.exit("bench/gpu.py: no CUDA GPU")
    name = ctypes.create_string_buffer(256)
    cuda.cuDeviceGetName(name, 255, 0)
    return name.value.decode()


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def write_inputs(tmp, length, train):
    inputs = {"tokens": ("int32", f"1x{length}", "range"),
              "targets": ("int32", f"1x{length}", "range")}
    if train:
        inputs.update({"loss_weights": ("float32", f"1x{length}", "const:1"),
                       "lr": ("float32", "scalar", "const:0.0001"),
                       "step": ("float32", "scalar", "const:1")})
    args = []
    for name, (dtype, shape, fill) in inputs.items():
        path = os.path.join(tmp, f"{name}-{length}.npy")
        run([sys.executable, NPY, "write", path, dtype, shape, fill])
        args += ["--input", f"{name}={path}"]
    return args


def time_function(bindir, lib, function, inputs, runs):
    out = run([os.path.join(bindir, "reformer-run"), lib,
               f"--function={function}", f"--repeat={runs}"] + inputs,
              capture_output=True).stdout
    whole = re.search(r"calls, median ([0-9.]+) ms", out)
    kernels = re.search(r"without copies: median ([0-9.]+) ms", out)
    memory = re.search(r"peak device memory ([0-9.]+) MiB", out)
    return (float(kernels.group(1)) / 1e3, float(whole.group(1)) / 1e3,
            float(memory.group(1)))


def attention_module(heads, length, dim, hashes, chunk, backward):
    t = f"tensor<1x{heads}x{length}x{dim}xf32>"
    lse = f"tensor<1x{heads}x{hashes}x{length}xf32>"
    buckets = f"tensor<1x{heads}x{hashes}x{length}xi32>"
    n = 2 * length // chunk
    if not backward:
        return f"""
func.func @attention(%qk: {t}, %v: {t}) -> {t} {{
  %o = reformer.lsh_attention %qk, %v {{n_hashes = {hashes} : i64,
      n_buckets = array<i64: {n}>, chunk_len = {chunk} : i64, causal,
      seed = 1 : i64}} : ({t}, {t}) -> {t}
  return %o : {t}
}}"""
    return f"""
func.func @attention(%qk: {t}, %v: {t}, %dy: {t}) -> ({t}, {t}) {{
  %o:3 = reformer.lsh_attention %qk, %v {{n_hashes = {hashes} : i64,
      n_buckets = array<i64: {n}>, chunk_len = {chunk} : i64, causal,
      seed = 1 : i64}} : ({t}, {t}) -> ({t}, {lse}, {buckets})
  %g:2 = reformer.lsh_attention_grad %qk, %v, %o#0, %dy lse(%o#1)
      buckets(%o#2) {{n_buckets = array<i64: {n}>, chunk_len = {chunk} : i64,
      causal}} : ({t}, {t}, {t}, {t}, {lse}, {buckets}) -> ({t}, {t})
  return %g#0, %g#1 : {t}, {t}
}}"""


def median_seconds(fn, runs):
    """Median wall time of `fn` (after one warm-up call) on the GPU."""
    import torch
    fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2]


def dense_module(rows, inner, outer):
    x = f"tensor<1x{rows}x{inner}xf32>"
    w = f"tensor<{inner}x{outer}xf32>"
    y = f"tensor<1x{rows}x{outer}xf32>"
    return f"""
func.func @dense(%x: {x}, %w: {w}) -> {y} {{
  %y = reformer.dense %x, %w : ({x}, {w}) -> {y}
  return %y : {y}
}}"""


def torch_per_dtype(measure):
    """{"float32": ..., "bfloat16": ...} of measure(torch, dtype), or None
    without PyTorch or a GPU it can use."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return {name: measure(torch, getattr(torch, name))
            for name in ("float32", "bfloat16")}


def torch_matmul(rows, inner, outer, runs):
    """Seconds per dtype of torch.matmul (cuBLAS), or None."""
    def measure(torch, dtype):
        x = torch.randn(rows, inner, device="cuda", dtype=dtype)
        w = torch.randn(inner, outer, device="cuda", dtype=dtype)
        return median_seconds(lambda: torch.matmul(x, w), runs)
    return torch_per_dtype(measure)


def torch_sdpa(heads, length, dim, runs):
    """(fwd s, fwd+bwd s) per dtype of PyTorch SDPA, or None."""
    def measure(torch, dtype):
        import torch.nn.functional as F
        q = torch.randn(1, heads, length, dim, device="cuda", dtype=dtype,
                        requires_grad=True)
        k = torch.randn_like(q, requires_grad=True)
        v = torch.randn_like(q, requires_grad=True)
        fwd = median_seconds(lambda: F.scaled_dot_product_attention(
            q, k, v, is_causal=True), runs)
        both = median_seconds(lambda: F.scaled_dot_product_attention(
            q, k, v, is_causal=True).sum().backward(), runs)
        return fwd, both
    return torch_per_dtype(measure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--lengths", default="16384,65536")
    args = parser.parse_args()
    device = gpu_name()
    bindir = os.path.join(args.build_dir, "bin")
    lengths = [int(x) for x in args.lengths.split(",")]
    lines = [f"Device: {device}.", ""]

    # 1. Build and the GPU tests.
    if not args.skip_build:
        run(["bash", os.path.join(ROOT, "scripts", "setup.sh")])
    lit = run([LIT, "-v",
               os.path.join(args.build_dir, "test", "Target", "Cuda")],
              capture_output=True)
    lines.append("GPU tests (test/Target/Cuda): " +
                 ", ".join(re.findall(r"^(PASS|FAIL|UNSUPPORTED): .*$",
                                      lit.stdout, re.M) or ["none ran"]))

    with tempfile.TemporaryDirectory() as tmp:
        # 2. Kernel report.
        ptx = os.path.join(tmp, "ptx")
        run([os.path.join(bindir, "reformer-compile"),
             os.path.join(ROOT, "bench", "configs", "enwik8-3layer-16k.json"),
             "--emit-train-step", "--target=cuda", "--emit=ptx", "-o", ptx])
        report = run([sys.executable, os.path.join(ROOT, "scripts",
                                                   "check_ptx.py"),
                      "--ptxas", os.path.join(CUDA_HOME, "bin", "ptxas"),
                      ptx],
                     capture_output=True).stdout
        kernels = re.findall(r"registers=(\d+) stack=\d+ spill_bytes=(\d+)",
                             report)
        spilling = sum(1 for _, spill in kernels if int(spill))
        mma = len(re.findall(r"^\S*matmul_mma\S* ", report, re.M))
        lines += ["", f"enwik8-style training step: {len(kernels)} kernels "
                  f"({mma} tensor-core matmuls), "
                  f"at most {max(int(r) for r, _ in kernels)} registers, "
                  f"{spilling} spilling (ptxas -arch=sm_90a).", ""]

        # 3. Whole models.
        # bf16 tensor-core matmuls (the default) and f32 ones side by side,
        # and mixed precision: bf16 matmuls and bf16 activations in memory
        # (the same config with "dtype": "bf16", "param_dtype": "f32").
        lines += ["| model | L | precision | function | tokens/s (kernels) | "
                  "tokens/s (with copies) | peak device memory (MiB) | "
                  "planned (MiB) |",
                  "|---|---|---|---|---|---|---|---|"]
        for ((name, length), config), precision in itertools.product(
                CONFIGS.items(), ("bf16", "f32", "mixed")):
            if length not in lengths:
                continue
            lib = os.path.join(tmp, f"{name}-{length}-{precision}.so")
            config_path = os.path.join(ROOT, "bench", "configs", config)
            if precision == "mixed":
                config_path = mixed_config(config_path, tmp)
            plan = run([os.path.join(bindir, "reformer-compile"), config_path,
                        "--emit-loss", "--emit-train-step", "--target=cuda",
                        "--gpu-matmul-precision="
                        f"{'bf16' if precision == 'mixed' else precision}",
                        "--print-memory-plan", "-o", lib],
                       capture_output=True).stdout
            planned = dict(re.findall(
                r"memory plan of @(\w+): peak ([0-9.]+) MiB", plan))
            for function, train in (("loss", False), ("train_step", True)):
                inputs = write_inputs(tmp, length, train)
                kernels_s, whole_s, memory = time_function(
                    bindir, lib, function, inputs, args.runs)
                line = (f"| {name} | {length} | {precision} | @{function} | "
                        f"{length / kernels_s:,.0f} | {length / whole_s:,.0f}"
                        f" | {memory:.0f} | {planned.get(function, '?')} |")
                print(line, flush=True)
                lines.append(line)

        # 4. Attention alone against PyTorch SDPA (enwik8-style shapes).
        heads, dim, hashes, chunk = 8, 128, 2, 128
        # bf16: the fused tensor-core forward and gradient; f32: the loop
        # kernels, the baseline they replace.
        lines += ["", "| L | ours bf16 fwd / fwd+bwd (ms) | ours f32 fwd / "
                  "fwd+bwd (ms) | SDPA fp32 fwd / fwd+bwd (ms) | SDPA bf16 "
                  "fwd / fwd+bwd (ms) |",
                  "|---|---|---|---|---|"]
        for length in lengths:
            times = []
            for precision, backward in itertools.product(("bf16", "f32"),
                                                         (False, True)):
                src = os.path.join(
                    tmp, f"attention-{length}-{precision}-{backward}.mlir")
                open(src, "w").write(attention_module(heads, length, dim,
                                                      hashes, chunk, backward))
                lib = src[:-5] + ".so"
                run([os.path.join(bindir, "reformer-compile"), src,
                     "--target=cuda", f"--gpu-matmul-precision={precision}",
                     "-o", lib])
                inputs = []
                for arg in ("qk", "v", "dy")[:3 if backward else 2]:
                    path = os.path.join(tmp, f"{arg}-{length}.npy")
                    run([sys.executable, NPY, "write", path, "float32",
                         f"1x{heads}x{length}x{dim}", "range"])
                    inputs += ["--input", f"arg{('qk', 'v', 'dy').index(arg)}"
                               f"={path}"]
                kernels_s, _, _ = time_function(bindir, lib, "attention",
                                                inputs, args.runs)
                times.append(kernels_s)
            sdpa = torch_sdpa(heads, length, dim, args.runs)
            cell = (lambda d: f"{sdpa[d][0] * 1e3:.2f} / {sdpa[d][1] * 1e3:.2f}"
                    if sdpa else "PyTorch not installed")
            line = (f"| {length} | {times[0] * 1e3:.2f} / "
                    f"{times[1] * 1e3:.2f} | {times[2] * 1e3:.2f} / "
                    f"{times[3] * 1e3:.2f} | {cell('float32')} | "
                    f"{cell('bfloat16')} |")
            print(line, flush=True)
            lines.append(line)
        # 5. One dense matmul of the FFN's shape against cuBLAS.
        rows, inner, outer = 16384, 1024, 4096
        flops = 2 * rows * inner * outer
        src = os.path.join(tmp, "dense.mlir")
        open(src, "w").write(dense_module(rows, inner, outer))
        inputs = []
        for arg, shape in (("arg0", f"1x{rows}x{inner}"),
                           ("arg1", f"{inner}x{outer}")):
            path = os.path.join(tmp, f"dense-{arg}.npy")
            run([sys.executable, NPY, "write", path, "float32", shape,
                 "const:0.01"])
            inputs += ["--input", f"{arg}={path}"]
        ours = {}
        for precision in ("bf16", "f32"):
            lib = os.path.join(tmp, f"dense-{precision}.so")
            run([os.path.join(bindir, "reformer-compile"), src,
                 "--target=cuda", f"--gpu-matmul-precision={precision}",
                 "-o", lib])
            ours[precision], _, _ = time_function(bindir, lib, "dense", inputs,
                                                  args.runs)
        theirs = torch_matmul(rows, inner, outer, args.runs)
        cell = (lambda s: f"{s * 1e3:.3f} ms, {flops / s / 1e12:.1f} TFLOP/s")
        lines += ["", f"Dense {rows} x {inner} . {inner} x {outer} "
                  "(the FFN's first matmul at L 16384; ours includes a copy "
                  "of the result into the output buffer):", "",
                  "| matmul | ours | torch.matmul (cuBLAS) |", "|---|---|---|"]
        for precision, dtype in (("bf16", "bfloat16"), ("f32", "float32")):
            line = (f"| {precision} | {cell(ours[precision])} | "
                    f"{cell(theirs[dtype]) if theirs else 'PyTorch not installed'} |")
            print(line, flush=True)
            lines.append(line)
    publish("gpu", "GPU check and benchmark", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
