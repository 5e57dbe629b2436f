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
    // Not attached to the module: its dump would bury the message.
    auto invalid = [&](StringRef option, int64_t value, StringRef expected) {
      emitError(UnknownLoc::get(ctx))
          << "rf-convert-reformer-to-linalg: " << option << " must be "
          << expected << ", got " << value;
      signalPassFailure();
    };
    if (vectorLanes < 1 || vectorLanes > 64 ||
        (vectorLanes & (vectorLanes - 1)) != 0)
      return invalid("vector-lanes", vectorLanes,
                     "a power of two from 1 to 64");
    if (maxBlockRun < 1)
      return invalid("max-block-run", maxBlockRun, "1 or more");
    if (gradBlockRun < 0)
      return invalid("grad-block-run", gradBlockRun, "0 or more");
    if (sortTiles < 1)
      return invalid("sort-tiles", sortTiles, "1 or more");
    populateReformerToLinalgPatterns(patterns,
                                     {maxBlockRun, vectorLanes, gradBlockRun,
                                      sortTiles, outlineAttention});
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
