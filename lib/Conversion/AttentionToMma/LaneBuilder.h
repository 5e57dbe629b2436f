//===- LaneBuilder.h - Thread-level code for a GPU or its CPU emulation -*-===//
//
// A fused kernel is written once, as the code one GPU thread runs. The
// builder emits it either for the GPU (values are scalars, mma.sync and
// shuffles are warp instructions) or as a CPU emulation of a whole block:
// every value is a vector with one element per thread, memory accesses are
// gathers and scatters, a shuffle is a fixed permutation and mma.sync is
// computed from the fragment maps of MmaFragments.h. All threads of the
// emulated block run each instruction together, so barriers need nothing;
// the emulation checks the kernel's indexing and numerics on the CPU.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_LIB_CONVERSION_ATTENTIONTOMMA_LANEBUILDER_H
#define REFORMER_LIB_CONVERSION_ATTENTIONTOMMA_LANEBUILDER_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::reformer {

class LaneBuilder {
public:
  /// `emulatedThreads` is 0 for GPU code, else the block's thread count.
  LaneBuilder(OpBuilder &b, Location loc, ModuleOp module,
              int64_t emulatedThreads);

  bool emulated() const { return threads > 0; }
  OpBuilder &builder() { return b; }
  Location location() const { return loc; }

  /// The per-thread type of a `scalar` value.
  Type laneType(Type scalar) const;
  /// `value` (uniform over the block) as a per-thread value.
  Value lift(Value value);

  Value index(int64_t value);
  Value f32(double value);
  Value i32(int64_t value);

  Value add(Value x, Value y);
  Value add(Value x, int64_t y) { return y ? add(x, index(y)) : x; }
  Value sub(Value x, Value y);
  Value mul(Value x, int64_t y);
  Value div(Value x, int64_t y);
  Value rem(Value x, int64_t y);
  Value lessThan(Value x, int64_t y);
  /// (x mod n) for a possibly negative x.
  Value positiveMod(Value x, int64_t n);
  Value toIndex(Value i32Value);
  Value toI32(Value indexValue);

  /// memref[indices] (per-thread indices) and its masked store.
  Value load(Value memref, ValueRange indices);
  void store(Value value, Value memref, ValueRange indices,
             Value mask = nullptr);

  /// memref[indices] += value, atomically (f32).
  void atomicAdd(Value value, Value memref, ValueRange indices);
  /// `condition ? x : y` per thread.
  Value select(Value condition, Value x, Value y);

  /// The value of thread `thread xor laneMask` (within the warp).
  Value shuffleXor(Value value, int64_t laneMask);
  /// Two f32 rounded to bf16 (nearest even) in one 32-bit word, `low` in
  /// the low half.
  Value packBf16(Value low, Value high);
  /// D = A·B + C of mma.sync m16n8k16 (bf16 row × col, f32): four A words,
  /// two B words, four accumulators.
  SmallVector<Value, 4> mma(ArrayRef<Value> a, ArrayRef<Value> bWords,
                            ArrayRef<Value> c);
  void barrier();

private:
  /// The 1-D view of `memref` the emulation gathers from.
  Value flat(Value memref);
  /// Σ indices·strides of `memref`.
  Value linearIndex(Value memref, ValueRange indices);
  /// The module's 32-lane mma.sync emulation function (made on first use).
  StringRef mmaEmulation();

  OpBuilder &b;
  Location loc;
  ModuleOp module;
  int64_t threads;
  llvm::DenseMap<Value, Value> flatViews;
};

} // namespace mlir::reformer

#endif // REFORMER_LIB_CONVERSION_ATTENTIONTOMMA_LANEBUILDER_H
