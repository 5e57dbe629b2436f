//===- UnshareFills.cpp - The rf-unshare-fills pass -----------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/IR/IRMapping.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFUNSHAREFILLS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

struct RfUnshareFillsPass
    : reformer::impl::RfUnshareFillsBase<RfUnshareFillsPass> {
  void runOnOperation() override {
    SmallVector<linalg::FillOp> fills;
    getOperation()->walk([&](linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics() && !fill->getResult(0).hasOneUse())
        fills.push_back(fill);
    });
    for (linalg::FillOp fill : fills) {
      Value filled = fill->getResult(0);
      // Outputs (destinations) only: read-only uses can share the tensor.
      SmallVector<OpOperand *> destinations;
      bool readers = false;
      for (OpOperand &use : filled.getUses()) {
        auto user = dyn_cast<DestinationStyleOpInterface>(use.getOwner());
        if (user && user.isDpsInit(&use))
          destinations.push_back(&use);
        else
          readers = true;
      }
      llvm::sort(destinations, [](OpOperand *x, OpOperand *y) {
        Operation *a = x->getOwner(), *b = y->getOwner();
        return a->getBlock() == b->getBlock() && a->isBeforeInBlock(b);
      });
      // Without readers, the first destination keeps the original fill.
      for (OpOperand *use : llvm::drop_begin(destinations, readers ? 0 : 1)) {
        OpBuilder b(use->getOwner());
        IRMapping mapping;
        Value init = fill.getDpsInits()[0];
        if (auto empty = init.getDefiningOp<tensor::EmptyOp>())
          mapping.map(init, b.clone(*empty)->getResult(0));
        use->set(b.clone(*fill, mapping)->getResult(0));
      }
    }
  }
};

} // namespace
