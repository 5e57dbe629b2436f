#!/usr/bin/env python3
"""Times the model builder: config -> verified reformer-dialect module.

For each preset, runs `reformer-model --preset=NAME` (build + verify + print)
and `reformer-opt` on its output (parse + verify again) several times, prints
a table of medians and writes it to bench/results/model_builder.md.

Usage: bench/model_builder.py [--build-dir build] [--runs 7]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from results_table import publish
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGET_S = 2.0  # the builder must emit the enwik8 model in under 2 s


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bindir = os.path.join(args.build_dir, "bin")
    model = os.path.join(bindir, "reformer-model")
    opt = os.path.join(bindir, "reformer-opt")
    presets = subprocess.run([model, "--list-presets"], check=True,
                             capture_output=True, text=True).stdout.split()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in presets:
            out = os.path.join(tmp, preset + ".mlir")
            build = [timed([model, "--preset=" + preset, "-o", out])
                     for _ in range(args.runs)]
            parse = [timed([opt, out, "-o", os.devnull])
                     for _ in range(args.runs)]
            size_kb = os.path.getsize(out) / 1024
            rows.append((preset, statistics.median(build), min(build),
                         statistics.median(parse), size_kb))

    header = ("| preset | build+verify median (s) | min (s) | "
              "reformer-opt parse+verify median (s) | IR size (KiB) | "
              "build / 2 s budget |")
    lines = [header, "|---|---|---|---|---|---|"]
    for preset, med, lo, parse, size in rows:
        lines.append(f"| {preset} | {med:.4f} | {lo:.4f} | {parse:.4f} | "
                     f"{size:.0f} | {med / BUDGET_S:.3f} |")
    publish("model_builder",
            f"Model builder timings ({args.runs} runs each, "
            f"{os.cpu_count()} cores)", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
