#!/usr/bin/env python3
"""Training-step compile time and compiler memory by depth.

Compiles @train_step (reformer-compile --emit-train-step) of the L 4096
bench model (bench/configs/two-layer-4k.json) with n_layers changed, and of
the enwik8-style preset, for the CPU and --target=cuda, once with the
default per-layer functions and once with --inline-layers (every layer in
the step itself, as before layers were compiled once), and records the
wall time and the compiler's peak RSS. With --speed it also times the
2- and 12-layer steps of both builds side by side (reformer-run, median of
--runs calls), since compile time must not be bought with step speed.

Prints the tables and writes them to bench/results/compile_time.md.

Each entry is the fastest of --repeat compiles, after one untimed warm-up
compile.

Usage: bench/compile_time.py [--build-dir build] [--layers 2,6,12,24,48]
       [--inline-layers 2,6,12] [--targets cpu,cuda] [--repeat 2] [--speed]
       [--runs 5]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from results_table import publish
import train_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compile_best(bindir, source, target, inline, tmp, repeat):
    """The fastest of `repeat` compiles: (seconds, compiler peak RSS MiB)."""
    runs = [compile_once(bindir, source, target, inline, tmp)
            for _ in range(repeat)]
    return min(runs)


def compile_once(bindir, source, target, inline, tmp):
    """Compiles one training step; returns (seconds, compiler peak RSS MiB)."""
    out = os.path.join(tmp, "step.so")
    cmd = [os.path.join(bindir, "reformer-compile"), *source,
           "--emit-train-step", f"--target={target}", "-o", out]
    if inline:
        cmd.append("--inline-layers")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return seconds, usage.ru_maxrss / 1024


def config_with_layers(layers, tmp):
    cfg = json.load(open(os.path.join(ROOT, "bench", "configs",
                                      "two-layer-4k.json")))
    cfg["n_layers"] = layers
    cfg["name"] = f"compile_{layers}"
    path = os.path.join(tmp, cfg["name"] + ".json")
    json.dump(cfg, open(path, "w"))
    return [path]


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--layers", default="2,6,12,24,48")
    parser.add_argument("--inline-layers", default="2,6,12",
                        help="depths also compiled with --inline-layers "
                             "(its time grows faster than linearly)")
    parser.add_argument("--targets", default="cpu,cuda")
    parser.add_argument("--repeat", type=int, default=2,
                        help="compiles per entry; the fastest counts")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bindir = os.path.join(args.build_dir, "bin")
    depths = [int(x) for x in args.layers.split(",")]
    inline_depths = {int(x) for x in args.inline_layers.split(",") if x}
    tables = [f"Machine: {cpu_name()}, {os.cpu_count()} cores."]
    with tempfile.TemporaryDirectory() as tmp:
        # The first compile of a session pays for cold caches: not timed.
        compile_once(bindir, config_with_layers(depths[0], tmp), "cpu", False,
                     tmp)
        for target in args.targets.split(","):
            lines = ["| model | layers | per-layer functions (s) | "
                     "peak RSS (MiB) | inlined layers (s) | peak RSS (MiB) |",
                     "|---|---|---|---|---|---|"]
            base = None
            runs = [(f"L 4096 bench", d, config_with_layers(d, tmp))
                    for d in depths]
            runs.append(("enwik8 preset", 12, ["--preset=enwik8"]))
            for model, layers, source in runs:
                secs, rss = compile_best(bindir, source, target, False, tmp,
                                         args.repeat)
                if base is None:
                    base = (secs, rss)
                cells = [f"{secs:.1f} ({secs / base[0]:.2f}×)",
                         f"{rss:.0f} ({rss / base[1]:.2f}×)"]
                if layers in inline_depths and model.startswith("L 4096"):
                    isecs, irss = compile_once(bindir, source, target, True,
                                               tmp)
                    cells += [f"{isecs:.1f}", f"{irss:.0f}"]
                else:
                    cells += ["–", "–"]
                line = f"| {model} | {layers} | " + " | ".join(cells) + " |"
                print(f"[{target}] {line}", flush=True)
                lines.append(line)
            tables.append(f"### `--target={target}`\n\n" + "\n".join(lines))
        if args.speed:
            lines = ["| layers | per-layer functions (tokens/s) | "
                     "inlined layers (tokens/s) | ratio |", "|---|---|---|---|"]
            for layers in (2, 12):
                # Alternated, so drift on the machine hits both alike.
                new = train_step.step(bindir, layers, 4096, args.runs, tmp)
                old = train_step.step(bindir, layers, 4096, args.runs, tmp,
                                      ["--inline-layers"])
                line = (f"| {layers} | {4096 / new[0]:,.0f} | "
                        f"{4096 / old[0]:,.0f} | {old[0] / new[0]:.2f} |")
                print(f"[speed] {line}", flush=True)
                lines.append(line)
            tables.append("### Step speed at L 4096 (median of "
                          f"{args.runs} calls)\n\n" + "\n".join(lines))
    publish("compile_time", "Training-step compile time by depth",
            "\n\n".join(tables))


if __name__ == "__main__":
    main()
