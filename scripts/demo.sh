#!/usr/bin/env bash
# The main job on a built-in default: builds a Reformer LM from a preset
# (default: tiny; `scripts/demo.sh synthetic` picks another), compiles it
# to a CPU shared library, and runs it: the forward pass on this README's
# bytes as tokens, and, for byte-level models, the loss over the README.
# The model is untrained (seeded initialization): expect about
# ln 256 = 5.55 nats. Outputs land in build/demo/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
preset="${1:-tiny}"

"$root/scripts/setup.sh" >/dev/null
bin="$build_dir/bin"
out="$build_dir/demo"
mkdir -p "$out"

echo "== model '$preset' (presets: $("$bin/reformer-model" --list-presets | paste -sd' '))"
"$bin/reformer-model" --preset="$preset" --summary -o "$out/$preset.mlir"

echo
echo "== compiling: config -> reformer dialect -> linalg -> LLVM -> $out/$preset.so"
"$bin/reformer-compile" --preset="$preset" --emit-loss -o "$out/$preset.so" \
  --dump-intermediates-to="$out/$preset.stages"
echo "IR after every stage: $(ls "$out/$preset.stages" | paste -sd' ')"

echo
echo "== running it (no MLIR at run time)"
listing="$("$bin/reformer-run" "$out/$preset.so" --list)"
grep -E "^function|^  (input|output)" <<<"$listing"
shape="$(grep -m1 "input tokens" <<<"$listing" | sed 's/.*\[\(.*\)\]/\1/; s/, /x/')"
vocab="$(grep -m1 "embeddings.word_embeddings.weight" <<<"$listing" | sed 's/.*\[\([0-9]*\),.*/\1/')"
python3 "$root/scripts/npy.py" write "$out/tokens.npy" int32 "$shape" \
  "bytes:$root/README.md:$vocab"
"$bin/reformer-run" "$out/$preset.so" --input tokens="$out/tokens.npy"
if [[ "$vocab" == 256 ]]; then
  "$bin/reformer-run" "$out/$preset.so" --eval-bytes="$root/README.md" --max-windows=8 ||
    echo "(README.md is too short for one window of this model)"
fi
