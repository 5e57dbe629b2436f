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


def model_throughput(bindir, model, threads):
    """Tokens/s of @loss over random bytes, from reformer-run's report.
    `model` is a preset name or a config file."""
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "model.so")
        source = [model] if model.endswith(".json") else ["--preset=" + model]
        subprocess.run([os.path.join(bindir, "reformer-compile")] + source +
                       ["--emit-loss",
                        "--parallel=" + ("true" if threads > 1 else "false"),
                        "-o", lib], check=True)
        data = os.path.join(tmp, "bytes")
        rng = random.Random(1)
        with open(data, "wb") as f:
            f.write(bytes(rng.randrange(256) for _ in range(200000)))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out = subprocess.run([os.path.join(bindir, "reformer-run"), lib,
                              "--eval-bytes=" + data, "--max-windows=8"],
                             check=True, capture_output=True, text=True,
                             env=env).stdout
        return float(re.search(r"\(([0-9.e+]+) tokens/s\)", out).group(1))


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
             "| kernel | shape | median (ms) | GFLOP/s | % of peak | "
             "OpenBLAS median (ms) | OpenBLAS GFLOP/s | speed vs OpenBLAS |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows[1:]:
        name, shape, ms, gflops, _, base_ms, base_gflops = row
        pct = float(gflops) / peak * 100
        ratio = (f"{float(base_ms) / float(ms):.2f}x"
                 if base_ms not in ("n/a", "-") else "-")
        lines.append(f"| {name} | {shape} | {float(ms):.2f} | "
                     f"{float(gflops):.1f} | {pct:.0f}% | {base_ms} | "
                     f"{base_gflops} | {ratio} |")
    lines += ["", "| model (@loss over random bytes) | 1 core tokens/s | "
              f"{os.cpu_count()} cores tokens/s | speed-up |", "|---|---|---|---|"]
    models = {"tiny (2 layers, d 64, L 256)": "tiny",
              "2 layers, d 256, 4 heads, d_ff 1024, LSH 4×64, L 4096":
                  os.path.join(ROOT, "bench", "configs", "two-layer-4k.json")}
    for label, model in models.items():
        one = model_throughput(bindir, model, 1)
        many = model_throughput(bindir, model, os.cpu_count())
        lines.append(f"| {label} | {one:.0f} | {many:.0f} | "
                     f"{many / one:.2f}x |")
    publish("cpu_kernels", f"CPU kernels ({args.runs} runs each)",
            "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
