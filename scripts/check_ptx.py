#!/usr/bin/env python3
"""Assembles every PTX file in a directory with ptxas and reports each
kernel's registers, spills and stack: the GPU-free check of generated GPU
code.

Usage: check_ptx.py --ptxas PATH [--arch sm_90a] [--no-spills REGEX]
                    [--max-registers N] DIR

Prints one line per kernel and a summary. Exits 1 if any file fails to
assemble, or if a kernel whose module name matches --no-spills spills.
--max-registers caps ptxas's registers per thread (ptxas -maxrregcount), to
see how close kernels are to spilling.
"""
import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

FUNCTION = re.compile(r"Compiling entry function '([^']+)'")
USAGE = re.compile(r"Used (\d+) registers")
SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                    r"(\d+) bytes spill loads")


def assemble(ptxas, arch, max_registers, path):
    command = [ptxas, f"-arch={arch}", "-v", path, "-o", os.devnull]
    if max_registers:
        command.append(f"-maxrregcount={max_registers}")
    proc = subprocess.run(command, capture_output=True, text=True)
    return path, proc.returncode, proc.stdout + proc.stderr


def parse(report):
    """(kernel, registers, stack bytes, spill bytes) per entry function."""
    kernels = []
    for block in re.split(r"(?=ptxas info\s+: Compiling entry function)",
                          report):
        name = FUNCTION.search(block)
        if not name:
            continue
        regs = USAGE.search(block)
        spill = SPILLS.search(block)
        kernels.append((name.group(1), int(regs.group(1)) if regs else 0,
                        int(spill.group(1)) if spill else 0,
                        int(spill.group(2)) + int(spill.group(3))
                        if spill else 0))
    return kernels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptxas", required=True)
    parser.add_argument("--arch", default="sm_90a")
    parser.add_argument("--no-spills", default=None,
                        help="regex of kernel module names that must not "
                             "spill")
    parser.add_argument("--max-registers", type=int, default=None,
                        help="registers per thread ptxas may use")
    parser.add_argument("dir")
    args = parser.parse_args()
    files = sorted(os.path.join(args.dir, f) for f in os.listdir(args.dir)
                   if f.endswith(".ptx"))
    if not files:
        sys.exit(f"check_ptx: no .ptx files in {args.dir}")
    failed, spilled, total = [], [], 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda f: assemble(args.ptxas, args.arch,
                                                  args.max_registers, f),
                                files))
    for path, code, report in results:
        module = os.path.basename(path)[:-len(".ptx")]
        if code != 0:
            failed.append(module)
            print(f"FAILED {module}:\n{report.strip()}")
            continue
        for kernel, regs, stack, spill in parse(report):
            total += 1
            print(f"{module} {kernel} registers={regs} stack={stack} "
                  f"spill_bytes={spill}")
            if spill and args.no_spills and re.search(args.no_spills,
                                                      module):
                spilled.append(module)
                print(f"forbidden spill: {module} spills {spill} bytes "
                      f"(--no-spills {args.no_spills})")
    print(f"summary: {len(files)} modules, {total} kernels assembled for "
          f"{args.arch}, {len(failed)} failed, "
          f"{len(spilled)} forbidden spills")
    return 1 if failed or spilled else 0


if __name__ == "__main__":
    sys.exit(main())
