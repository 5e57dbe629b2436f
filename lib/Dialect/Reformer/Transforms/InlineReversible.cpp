//===- InlineReversible.cpp - reversible → its forward computation --------===//

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFINLINEREVERSIBLE
#include "reformer/Dialect/Reformer/Transforms/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// Moves the body of a residual function in front of `op`, feeding it
/// `input`, and returns the value it yields.
static Value inlineResidual(PatternRewriter &rewriter, ReversibleOp op,
                            Region &region, Value input) {
  Block &block = region.front();
  auto yield = cast<YieldOp>(block.getTerminator());
  // Inline first so a yielded block argument has been replaced by `input`.
  rewriter.inlineBlockBefore(&block, op, ValueRange{input});
  Value result = yield.getValues().front();
  rewriter.eraseOp(yield);
  return result;
}

struct InlineReversiblePattern : OpRewritePattern<ReversibleOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ReversibleOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value f = inlineResidual(rewriter, op, op.getF(), op.getX2());
    Value y1 = arith::AddFOp::create(rewriter, loc, op.getX1(), f);
    Value g = inlineResidual(rewriter, op, op.getG(), y1);
    Value y2 = arith::AddFOp::create(rewriter, loc, op.getX2(), g);
    rewriter.replaceOp(op, {y1, y2});
    return success();
  }
};

struct RfInlineReversiblePass
    : reformer::impl::RfInlineReversibleBase<RfInlineReversiblePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateInlineReversiblePatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace

void mlir::reformer::populateInlineReversiblePatterns(
    RewritePatternSet &patterns) {
  patterns.add<InlineReversiblePattern>(patterns.getContext());
}
