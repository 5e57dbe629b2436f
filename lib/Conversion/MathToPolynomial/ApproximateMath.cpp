//===- ApproximateMath.cpp - The rf-approximate-math pass -----------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/StringSwitch.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFAPPROXIMATEMATH
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {
struct RfApproximateMathPass
    : reformer::impl::RfApproximateMathBase<RfApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return llvm::StringSwitch<bool>(name)
          .Cases({"math.exp", "math.log", "math.tanh", "math.erf"}, true)
          .Default(false);
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
