//===- MemoryPlan.cpp - Planned peak buffer memory of a function ----------===//

#include "reformer/Analysis/MemoryPlan.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::reformer;

namespace {

FailureOr<int64_t> bytesOf(Operation *op, MemRefType type) {
  if (!type.hasStaticShape())
    return op->emitError("memory plan: a buffer of dynamic size");
  Type element = type.getElementType();
  // Index buffers hold 64-bit integers on the CPU targets.
  int64_t bits = isa<IndexType>(element) ? 64
                 : element.isIntOrFloat()
                     ? int64_t(element.getIntOrFloatBitWidth())
                     : 0;
  if (bits == 0)
    return op->emitError("memory plan: a buffer of ") << element;
  return type.getNumElements() * std::max<int64_t>(bits / 8, 1);
}

/// Walks one block in order; `live` holds the buffers allocated in it (or
/// in enclosing blocks) and not yet freed.
struct Walker {
  /// Peak own bytes of a called function, computed on demand.
  function_ref<FailureOr<int64_t>(func::CallOp)> calleePeak;
  DenseMap<Value, std::pair<MemRefType, int64_t>> live;
  int64_t current = 0;
  MemoryPlan plan;

  /// `callee`: the call inside which `bytes` are reached, if any.
  void notePeak(int64_t bytes, func::CallOp callee = {},
                int64_t calleeBytes = 0) {
    if (bytes <= plan.peakBytes)
      return;
    plan.peakBytes = bytes;
    plan.liveAtPeak.clear();
    for (auto &[value, buffer] : live)
      plan.liveAtPeak.push_back(buffer);
    plan.peakCallee = callee ? callee.getCallee().str() : "";
    plan.peakCalleeBytes = calleeBytes;
  }

  LogicalResult walk(Block &block) {
    SmallVector<Value> own;
    for (Operation &op : block) {
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        FailureOr<int64_t> bytes = bytesOf(&op, alloc.getType());
        if (failed(bytes))
          return failure();
        live[alloc.getResult()] = {alloc.getType(), *bytes};
        own.push_back(alloc.getResult());
        current += *bytes;
        notePeak(current);
        continue;
      }
      if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
        auto it = live.find(dealloc.getMemref());
        if (it != live.end()) {
          current -= it->second.second;
          live.erase(it);
        }
        continue;
      }
      // A callee's buffers are live while it runs.
      if (auto call = dyn_cast<func::CallOp>(op)) {
        FailureOr<int64_t> bytes = calleePeak(call);
        if (failed(bytes))
          return failure();
        notePeak(current + *bytes, call, *bytes);
        continue;
      }
      // A nested block's buffers are freed inside it: they add to what is
      // live here only while it runs.
      for (Region &region : op.getRegions())
        for (Block &nested : region) {
          int64_t before = current;
          if (failed(walk(nested)))
            return failure();
          current = before;
        }
    }
    // What the block did not free (the deallocation pipeline frees every
    // block's buffers in it) stops counting when the block ends.
    for (Value value : own)
      live.erase(value);
    return success();
  }
};

} // namespace

FailureOr<MemoryPlan> mlir::reformer::computeMemoryPlan(func::FuncOp func) {
  Walker walker;
  // A layer's function is called once per layer: plan it once.
  DenseMap<Operation *, int64_t> calleePeaks;
  auto calleePeak = [&](func::CallOp call) -> FailureOr<int64_t> {
    auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
        call, call.getCalleeAttr());
    if (!callee || callee == func)
      return call.emitError("memory plan: cannot follow this call");
    auto it = calleePeaks.find(callee);
    if (it != calleePeaks.end())
      return it->second;
    FailureOr<MemoryPlan> plan = computeMemoryPlan(callee);
    if (failed(plan))
      return failure();
    calleePeaks[callee] = plan->peakBytes;
    return plan->peakBytes;
  };
  walker.calleePeak = calleePeak;
  for (BlockArgument arg : func.getArguments())
    if (auto type = dyn_cast<MemRefType>(arg.getType())) {
      FailureOr<int64_t> bytes = bytesOf(func, type);
      if (failed(bytes))
        return failure();
      walker.plan.argumentBytes += *bytes;
    }
  if (!func.isExternal() && failed(walker.walk(func.getBody().front())))
    return failure();
  llvm::stable_sort(walker.plan.liveAtPeak,
                    [](auto &a, auto &b) { return a.second > b.second; });
  return walker.plan;
}

static std::string mebibytes(int64_t bytes) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%.1f MiB", double(bytes) / (1 << 20));
  return s;
}

void mlir::reformer::printMemoryPlan(const MemoryPlan &plan, StringRef function,
                                     llvm::raw_ostream &os,
                                     unsigned maxBuffers) {
  os << "memory plan of @" << function << ": peak "
     << mebibytes(plan.argumentBytes + plan.peakBytes) << " = arguments "
     << mebibytes(plan.argumentBytes) << " + own buffers "
     << mebibytes(plan.peakBytes) << "\n";
  if (!plan.peakCallee.empty())
    os << "  at the peak: in @" << plan.peakCallee << " ("
       << mebibytes(plan.peakCalleeBytes)
       << " of its own), with these buffers live across the call:\n";
  unsigned shown = 0;
  for (auto &[type, bytes] : plan.liveAtPeak) {
    if (shown++ == maxBuffers) {
      os << "  … " << plan.liveAtPeak.size() - maxBuffers
         << " smaller buffers\n";
      break;
    }
    os << "  " << mebibytes(bytes) << "  " << type << "\n";
  }
}
