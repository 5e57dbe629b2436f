//===- ExpandBf16.cpp - The rf-expand-bf16 pass ---------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFEXPANDBF16
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

// Only the bf16 patterns: arith-expand would also turn maximumf into
// NaN-propagating compares and selects.
struct RfExpandBf16Pass : reformer::impl::RfExpandBf16Base<RfExpandBf16Pass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    arith::populateExpandBFloat16Patterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
