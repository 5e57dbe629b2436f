//===- Loss.cpp - softmax_cross_entropy → linalg --------------------------===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

/// Row max, row sum of exp, per-position weighted loss, then one reduction
/// to (Σ w·loss, Σ w) and their ratio.
struct LowerSoftmaxCrossEntropy : OpRewritePattern<SoftmaxCrossEntropyOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SoftmaxCrossEntropyOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getLogits().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    Value logits = op.getLogits();

    auto [max, sumExp] = rowMaxAndSumExp(b, logits);

    AffineMap row2 = identity(ctx, 2);
    SmallVector<Value> inputs = {max, sumExp, op.getTargets()};
    SmallVector<AffineMap> maps = {row2, row2, row2};
    if (op.getWeights()) {
      inputs.push_back(op.getWeights());
      maps.push_back(row2);
    }
    AffineMap scalar = AffineMap::get(2, 0, {}, ctx);
    maps.append({scalar, scalar});
    bool weighted = static_cast<bool>(op.getWeights());
    SmallVector<Value> sums = generic(
        b, inputs,
        ValueRange{filledTensor(b, {}, 0.0), filledTensor(b, {}, 0.0)}, maps, 2,
        {0, 1}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          SmallVector<Value> iv = loopIndices(ib, 2);
          Value target =
              arith::IndexCastOp::create(ib, ib.getIndexType(), a[2]);
          Value picked =
              toF32(ib, tensor::ExtractOp::create(
                            ib, logits, ValueRange{iv[0], iv[1], target}));
          // logsumexp − logit[target] = max + log(Σ exp) − logit[target].
          Value loss = arith::SubFOp::create(
              ib,
              arith::AddFOp::create(ib, a[0], math::LogOp::create(ib, a[1])),
              picked);
          Value w = weighted ? toF32(ib, a[3]) : f32Const(ib, 1.0);
          unsigned acc = weighted ? 4 : 3;
          linalg::YieldOp::create(
              ib,
              ValueRange{arith::AddFOp::create(
                             ib, a[acc], arith::MulFOp::create(ib, w, loss)),
                         arith::AddFOp::create(ib, a[acc + 1], w)});
        });
    Value mean = generic(
        b, ValueRange{sums[0], sums[1]}, emptyTensor(b, {}, b.getF32Type()),
        {AffineMap::get(0, 0, {}, ctx), AffineMap::get(0, 0, {}, ctx),
         AffineMap::get(0, 0, {}, ctx)},
        0, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          linalg::YieldOp::create(
              ib, ValueRange{arith::DivFOp::create(ib, a[0], a[1])});
        })[0];
    rewriter.replaceOp(op, mean);
    return success();
  }
};

} // namespace

void reformer::populateLossLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerSoftmaxCrossEntropy>(patterns.getContext());
}
