#!/usr/bin/env bash
# The main job on a built-in default: builds a Reformer LM from a preset
# (default: tiny; try `scripts/demo.sh enwik8`), runs it through the
# compiler pipeline and shows what came out. Outputs land in build/demo/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
preset="${1:-tiny}"

"$root/scripts/setup.sh" >/dev/null
bin="$build_dir/bin"
out="$build_dir/demo"
mkdir -p "$out"

echo "== building the '$preset' model (scripts/demo.sh NAME picks another: $("$build_dir/bin/reformer-model" --list-presets | paste -sd' '))"
"$bin/reformer-model" --preset="$preset" --summary -o "$out/$preset.mlir"
"$bin/reformer-opt" --rf-prepare-inference "$out/$preset.mlir" \
  -o "$out/$preset.prepared.mlir"

echo
echo "== ops of the model, written to $out/$preset.mlir"
"$bin/reformer-opt" --print-op-stats "$out/$preset.mlir" -o /dev/null 2>&1 | grep reformer
echo
echo "== after rf-prepare-inference, written to $out/$preset.prepared.mlir"
"$bin/reformer-opt" --print-op-stats "$out/$preset.prepared.mlir" -o /dev/null 2>&1 | grep -E "reformer|arith|tensor"
