//===- MemoryPlan.h - Planned peak buffer memory of a function --*- C++ -*-===//
//
// Reads a bufferized function (after the deallocation pipeline) in program
// order and adds up the buffers it allocates and frees: the peak is what the
// compiled code will hold at once, known before anything runs. Arguments
// (parameters, inputs, results the caller provides) are counted apart. A
// call adds the callee's own peak to what is live across it, so a step that
// calls one function per layer is planned as a whole.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_ANALYSIS_MEMORYPLAN_H
#define REFORMER_ANALYSIS_MEMORYPLAN_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::reformer {

struct MemoryPlan {
  /// Bytes of the caller's buffers: every memref argument.
  int64_t argumentBytes = 0;
  /// Peak bytes of buffers the function allocates itself, and its callees
  /// while they run. A loop body's buffers count once (one iteration, or one
  /// worker of a parallel loop).
  int64_t peakBytes = 0;
  /// The function's own buffers live at the peak, largest first.
  SmallVector<std::pair<MemRefType, int64_t>> liveAtPeak;
  /// Where the peak is reached inside a call: the callee and its own peak
  /// bytes (the buffers above are those live across the call).
  std::string peakCallee;
  int64_t peakCalleeBytes = 0;
};

/// The plan of a bufferized `func`; fails (with an error on the op) on a
/// buffer of dynamic size.
FailureOr<MemoryPlan> computeMemoryPlan(func::FuncOp func);

/// Prints the plan as a few lines: totals, then the largest buffers live at
/// the peak (at most `maxBuffers`).
void printMemoryPlan(const MemoryPlan &plan, StringRef function,
                     llvm::raw_ostream &os, unsigned maxBuffers = 8);

} // namespace mlir::reformer

#endif // REFORMER_ANALYSIS_MEMORYPLAN_H
