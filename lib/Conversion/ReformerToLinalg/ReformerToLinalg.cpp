//===- ReformerToLinalg.cpp - The rf-convert-reformer-to-linalg pass ------===//

#include "Patterns.h"

#include "reformer/Conversion/Passes.h"
#include "reformer/Dialect/Reformer/IR/ReformerDialect.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFCONVERTREFORMERTOLINALG
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

void reformer::populateReformerToLinalgPatterns(
    RewritePatternSet &patterns, const AttentionLoweringOptions &attention) {
  populateInlineReversiblePatterns(patterns);
  populateDecomposeLshAttentionPatterns(patterns);
  populateLayerNormAndDenseLoweringPatterns(patterns);
  populateEmbeddingAndLayoutLoweringPatterns(patterns);
  populateLossLoweringPatterns(patterns);
  populateDropoutLoweringPatterns(patterns);
  populateGradientLoweringPatterns(patterns);
  populateLshStepLoweringPatterns(patterns, attention.sortTiles);
  populateAttentionLoweringPatterns(patterns, attention);
  populateAttentionGradLoweringPatterns(patterns, attention);
  // tensor.concat (the two residual streams) has no bufferization here.
  tensor::populateDecomposeTensorConcatPatterns(patterns);
}

namespace {
struct RfConvertReformerToLinalgPass
    : reformer::impl::RfConvertReformerToLinalgBase<
          RfConvertReformerToLinalgPass> {
  using Base::Base;
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    ConversionTarget target(*ctx);
    target.addIllegalDialect<ReformerDialect>();
    target.addIllegalOp<tensor::ConcatOp>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    RewritePatternSet patterns(ctx);
    if (vectorLanes < 1 || (vectorLanes & (vectorLanes - 1)) != 0) {
      // Not attached to the module: its dump would bury the message.
      emitError(UnknownLoc::get(ctx), "rf-convert-reformer-to-linalg: "
                                      "vector-lanes must be a power of two, "
                                      "got ")
          << static_cast<int64_t>(vectorLanes);
      return signalPassFailure();
    }
    if (gradBlockRun < 0) {
      emitError(UnknownLoc::get(ctx), "rf-convert-reformer-to-linalg: "
                                      "grad-block-run must be 0 or more, got ")
          << static_cast<int64_t>(gradBlockRun);
      return signalPassFailure();
    }
    populateReformerToLinalgPatterns(
        patterns, {maxBlockRun, vectorLanes, gradBlockRun, sortTiles});
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
