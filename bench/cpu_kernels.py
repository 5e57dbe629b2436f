#!/usr/bin/env python3
"""Generated CPU kernels against the machine's peak and OpenBLAS.

Runs build/bin/reformer-bench-kernels (JIT-compiled reformer ops, one core)
with OpenBLAS limited to one thread and free of the OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE overrides some machines set (they select slower kernels),
then an end-to-end model evaluation through reformer-compile/reformer-run
on one core and on all cores. Prints a table and writes it to
bench/results/cpu_kernels.md.

Usage: bench/cpu_kernels.py [--build-dir build] [--runs 7]
OpenBLAS comes from Debian's libopenblas0-pthread (installed if missing).
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

from results_table import publish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ensure_openblas():
    have = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True)
    if "libopenblas.so.0" in have.stdout:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq",
                           "libopenblas0-pthread"], check=False,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def kernels(bindir, runs):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run([os.path.join(bindir, "reformer-bench-kernels"),
                          str(runs)], check=True, capture_output=True,
                         text=True, env=env).stdout
    return [line.split("\t") for line in out.strip().splitlines()]


def run_measured(cmd, env):
    """Runs `cmd`; returns (stdout, peak RSS in MiB) of that process alone."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return out, usage.ru_maxrss / 1024


def model_flops_per_token(cfg):
    """Forward + loss FLOPs per token of a config (matmuls and attention
    blocks; elementwise work is not counted)."""
    d, ff, heads = cfg["d_model"], cfg["d_ff"], cfg["n_heads"]
    dh = d // heads
    rounds, chunk = cfg["n_hashes"], cfg["lsh_chunk_len"]
    buckets = cfg["n_buckets"]
    half_width = sum(b // 2 for b in (buckets if isinstance(buckets, list)
                                      else [buckets]))
    layer = (6 * d * d + 4 * d * ff             # q/k, v, out; the FFN
             + 4 * 2 * chunk * dh * rounds * heads  # scores and P·V
             + 2 * dh * half_width * rounds * heads)  # hashing
    return cfg["n_layers"] * layer + 2 * 2 * d * cfg["vocab_size"]


def model_step(bindir, config, threads, runs):
    """@loss (forward + cross-entropy) of a config on random bytes:
    median and fastest seconds per call, and the process's peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "model.so")
        subprocess.run([os.path.join(bindir, "reformer-compile"), config,
                        "--emit-loss",
                        "--parallel=" + ("true" if threads > 1 else "false"),
                        "-o", lib], check=True)
        length = json.load(open(config))["seq_len"]
        data = os.path.join(tmp, "bytes")
        rng = random.Random(1)
        with open(data, "wb") as f:
            f.write(bytes(rng.randrange(256) for _ in range(length + 1)))
        npy = os.path.join(ROOT, "scripts", "npy.py")
        for name in ("tokens", "targets"):
            subprocess.run([sys.executable, npy, "write",
                            os.path.join(tmp, name + ".npy"), "int32",
                            f"1x{length}", f"bytes:{data}:256"], check=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out, rss = run_measured(
            [os.path.join(bindir, "reformer-run"), lib, "--function=loss",
             "--input", "tokens=" + os.path.join(tmp, "tokens.npy"),
             "--input", "targets=" + os.path.join(tmp, "targets.npy"),
             f"--repeat={runs}"], env)
        m = re.search(r"median ([0-9.]+) ms, fastest ([0-9.]+) ms", out)
        return float(m.group(1)) / 1e3, float(m.group(2)) / 1e3, rss, length


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bindir = os.path.join(args.build_dir, "bin")
    ensure_openblas()

    rows = kernels(bindir, args.runs)
    peak = float(rows[0][3])
    lines = [f"FMA peak of one core, measured: {peak:.1f} GFLOP/s", "",
             "| kernel | shape | median (ms) | fastest (ms) | GFLOP/s | "
             "% of peak | OpenBLAS median (ms) | OpenBLAS GFLOP/s | "
             "speed vs OpenBLAS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows[1:]:
        name, shape, ms, gflops, _, base_ms, base_gflops, fastest = row
        pct = float(gflops) / peak * 100
        ratio = (f"{float(base_ms) / float(ms):.2f}x"
                 if base_ms not in ("n/a", "-") else "-")
        lines.append(f"| {name} | {shape} | {float(ms):.2f} | "
                     f"{float(fastest):.2f} | {float(gflops):.1f} | "
                     f"{pct:.0f}% | {base_ms} | {base_gflops} | {ratio} |")
    times = {(r[0], r[1]): float(r[2]) for r in rows[1:]}
    lsh = times.get(("lsh_attention", "H4_L16384_R4_c64_b16x32"))
    full = times.get(("full_attention", "H4_L16384"))
    if lsh and full:
        lines += ["", f"LSH attention at L = 16384 is {full / lsh:.1f}x "
                  "faster than full attention of the same shape (medians)."]
    lines += ["", "End to end: `@loss` (forward + cross-entropy) of whole "
              "models through reformer-compile and reformer-run, "
              f"{args.runs} calls after a warm-up.", "",
              "| model | cores | median (s) | fastest (s) | tokens/s | "
              "GFLOP/s | % of peak | peak RSS (MiB) |",
              "|---|---|---|---|---|---|---|---|"]
    configs = {"2 layers, d 256, L 4096": "two-layer-4k.json",
               "2 layers, d 256, L 16384": "two-layer-16k.json"}
    for label, name in configs.items():
        config = os.path.join(ROOT, "bench", "configs", name)
        flops = model_flops_per_token(json.load(open(config)))
        for threads in sorted({1, os.cpu_count()}):
            median, fastest, rss, length = model_step(bindir, config, threads,
                                                      args.runs)
            rate = flops * length / median / 1e9
            lines.append(f"| {label} | {threads} | {median:.3f} | "
                         f"{fastest:.3f} | {length / median:.0f} | "
                         f"{rate:.1f} | {rate / (peak * threads) * 100:.0f}% "
                         f"| {rss:.0f} |")
    publish("cpu_kernels", f"CPU kernels ({args.runs} runs each)",
            "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
