#!/usr/bin/env python3
"""Compiled training steps: tokens/s and peak memory by depth and length.

For the 2-layer model of bench/configs (d_model 256, 4 heads, d_ff 1024,
LSH with 4 hashes, chunk 64, causal, batch 1) and the same model with 6 and
12 layers, at L = 4096 and 16384: compiles @train_step (forward, backward
with reversible recomputation, Adam) with reformer-compile
--emit-train-step on all cores, prints its memory plan, and times it with
reformer-run (median of --runs calls after a warm-up) while recording the
process's peak RSS. Prints a table and writes it to
bench/results/train_step.md.

Usage: bench/train_step.py [--build-dir build] [--runs 5] [--layers 2,6,12]
       [--lengths 4096,16384]
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile

from results_table import publish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {4096: "two-layer-4k.json", 16384: "two-layer-16k.json"}


def run_measured(cmd):
    """Runs `cmd`; returns (stdout, peak RSS in MiB) of that process alone."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed")
    return out, usage.ru_maxrss / 1024


def step(bindir, layers, length, runs, tmp, compile_flags=()):
    cfg = json.load(open(os.path.join(ROOT, "bench", "configs",
                                      CONFIGS[length])))
    cfg["n_layers"] = layers
    cfg["name"] = f"train_{layers}x{length}"
    config = os.path.join(tmp, cfg["name"] + ".json")
    json.dump(cfg, open(config, "w"))
    lib = os.path.join(tmp, cfg["name"] + ".so")
    plan = subprocess.run(
        [os.path.join(bindir, "reformer-compile"), config, "--emit-train-step",
         "--print-memory-plan", *compile_flags, "-o", lib],
        check=True, capture_output=True, text=True).stdout
    m = re.search(r"memory plan of @train_step: peak ([0-9.]+) MiB = "
                  r"arguments ([0-9.]+) MiB \+ own buffers ([0-9.]+) MiB", plan)
    planned, arguments, own = (float(m.group(i)) for i in (1, 2, 3))
    npy = os.path.join(ROOT, "scripts", "npy.py")
    data = os.path.join(tmp, "bytes")
    rng = random.Random(1)
    with open(data, "wb") as f:
        f.write(bytes(rng.randrange(256) for _ in range(length + 1)))
    inputs = {"tokens": ("int32", f"1x{length}", f"bytes:{data}:256"),
              "targets": ("int32", f"1x{length}", f"bytes:{data}:255"),
              "loss_weights": ("float32", f"1x{length}", "const:1"),
              "lr": ("float32", "scalar", "const:0.0001"),
              "step": ("float32", "scalar", "const:1")}
    args = [os.path.join(bindir, "reformer-run"), lib,
            "--function=train_step", f"--repeat={runs}"]
    for name, (dtype, shape, fill) in inputs.items():
        path = os.path.join(tmp, name + ".npy")
        subprocess.run([sys.executable, npy, "write", path, dtype, shape,
                        fill], check=True)
        args += ["--input", f"{name}={path}"]
    out, rss = run_measured(args)
    m = re.search(r"median ([0-9.]+) ms, fastest ([0-9.]+) ms", out)
    median, fastest = float(m.group(1)) / 1e3, float(m.group(2)) / 1e3
    return median, fastest, rss, planned, arguments, own


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layers", default="2,6,12")
    parser.add_argument("--lengths", default="4096,16384")
    args = parser.parse_args()
    bindir = os.path.join(args.build_dir, "bin")
    lines = ["| layers | L | median (s) | fastest (s) | tokens/s | "
             "peak RSS (MiB) | planned peak (MiB) | of which parameters + "
             "Adam state (MiB) | activations, planned (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for length in (int(x) for x in args.lengths.split(",")):
            for layers in (int(x) for x in args.layers.split(",")):
                median, fastest, rss, planned, arguments, own = step(
                    bindir, layers, length, args.runs, tmp)
                line = (f"| {layers} | {length} | {median:.3f} | "
                        f"{fastest:.3f} | {length / median:,.0f} | "
                        f"{rss:.0f} | {planned:.0f} | {arguments:.0f} | "
                        f"{own:.0f} |")
                print(line, flush=True)
                lines.append(line)
    publish("train_step", "Compiled training steps (forward, backward with "
            "reversible recomputation, Adam), 2 cores", "\n".join(lines))


if __name__ == "__main__":
    main()
