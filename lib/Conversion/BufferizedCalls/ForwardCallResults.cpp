//===- ForwardCallResults.cpp - rf-forward-call-results -------------------===//
//
// After buffer-results-to-out-params a caller that returns what a call
// returned allocates the call's output, then copies it into its own output
// when it returns. When that output is touched by nothing but the copy, the
// call can write it directly: the allocation and the copy go.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFFORWARDCALLRESULTS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

/// Whether `copy` moves a call's output into the function's output
/// argument with nothing else in between to see the difference.
bool isForwardable(memref::CopyOp copy, func::FuncOp func) {
  auto out = dyn_cast<BlockArgument>(copy.getTarget());
  auto alloc = copy.getSource().getDefiningOp<memref::AllocOp>();
  if (!out || out.getOwner() != &func.getBody().front() || !out.hasOneUse() ||
      !alloc || alloc.getType() != out.getType() ||
      alloc->getBlock() != copy->getBlock())
    return false;
  bool called = false;
  for (Operation *user : alloc->getUsers()) {
    if (user == copy.getOperation())
      continue;
    if (!isa<func::CallOp>(user))
      return false;
    called = true;
  }
  return called;
}

struct RfForwardCallResultsPass
    : reformer::impl::RfForwardCallResultsBase<RfForwardCallResultsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    SmallVector<memref::CopyOp> copies;
    for (auto copy : func.getBody().front().getOps<memref::CopyOp>())
      if (isForwardable(copy, func))
        copies.push_back(copy);
    for (memref::CopyOp copy : copies) {
      Operation *alloc = copy.getSource().getDefiningOp();
      Value out = copy.getTarget();
      copy.erase();
      alloc->getResult(0).replaceAllUsesWith(out);
      alloc->erase();
    }
  }
};

} // namespace
