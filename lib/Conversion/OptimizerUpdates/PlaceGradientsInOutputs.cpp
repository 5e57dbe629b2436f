//===- PlaceGradientsInOutputs.cpp - rf-place-gradients-in-outputs --------===//
//
// The backward of a training step accumulates each parameter's gradient in
// a buffer that lives until the parameter's optimizer update reads it. The
// update's output for the new parameter is a caller's buffer that holds
// nothing until the update writes it, so the gradient can live there
// instead: an elementwise update reads an element's gradient before it
// writes the element's new value.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Interfaces/ViewLikeInterface.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFPLACEGRADIENTSINOUTPUTS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

/// Whether every access to `alloc`'s buffer (through views too) happens in
/// ops of `block` before `update`, in `update` itself, or is a free; the
/// frees are added to `frees`.
bool usedOnlyBefore(memref::AllocOp alloc, Operation *update, Block &block,
                    SmallVectorImpl<Operation *> &frees) {
  SmallVector<Value> worklist = {alloc.getResult()};
  while (!worklist.empty()) {
    Value buffer = worklist.pop_back_val();
    for (Operation *user : buffer.getUsers()) {
      if (isa<memref::DeallocOp>(user)) {
        frees.push_back(user);
        continue;
      }
      if (user == update)
        continue;
      Operation *top = block.findAncestorOpInBlock(*user);
      if (!top || !top->isBeforeInBlock(update))
        return false;
      auto view = dyn_cast<ViewLikeOpInterface>(user);
      if (view && view.getViewSource() == buffer) {
        worklist.push_back(view->getResult(0));
        continue;
      }
      // Another way to alias the buffer (a call returning it, a region
      // yielding it): its uses are not followed, so give up.
      if (user->hasTrait<OpTrait::IsTerminator>() ||
          llvm::any_of(user->getResultTypes(), llvm::IsaPred<BaseMemRefType>))
        return false;
    }
  }
  return true;
}

struct RfPlaceGradientsInOutputsPass
    : reformer::impl::RfPlaceGradientsInOutputsBase<
          RfPlaceGradientsInOutputsPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Block &entry = func.getBody().front();
    SmallVector<linalg::GenericOp> updates;
    for (auto op : entry.getOps<linalg::GenericOp>())
      if (op->hasAttr(reformer::kOptimizerUpdateAttrName) &&
          op.hasPureBufferSemantics() && op.getNumDpsInputs() >= 2 &&
          op.getNumDpsInits() >= 1)
        updates.push_back(op);
    for (linalg::GenericOp update : updates) {
      auto alloc =
          update.getDpsInputOperand(1)->get().getDefiningOp<memref::AllocOp>();
      auto output = dyn_cast<BlockArgument>(update.getDpsInitOperand(0)->get());
      if (!alloc || alloc->getBlock() != &entry || !output ||
          output.getOwner() != &entry || alloc.getType() != output.getType())
        continue;
      if (!llvm::all_of(output.getUsers(),
                        [&](Operation *user) { return user == update; }))
        continue;
      SmallVector<Operation *> frees;
      if (!usedOnlyBefore(alloc, update, entry, frees))
        continue;
      for (Operation *free : frees)
        free->erase();
      alloc.replaceAllUsesWith(Value(output));
      alloc.erase();
    }
  }
};

} // namespace
