//===- Gradients.cpp - gradient ops and optimizer updates → linalg --------===//
//
// The backward ops of the position-wise layers and the Adam update, as
// linalg on tensors: the matmuls go through the same vectorized kernels as
// the forward, the rest are fused elementwise generics and row reductions.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

arith::FastMathFlagsAttr reassocFlags(MLIRContext *ctx) {
  return arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::reassoc);
}

/// `[R, C]` → `[C, R]`, materialized so the matmul kernels read rows.
Value transposed(ImplicitLocOpBuilder &b, Value x) {
  auto type = cast<RankedTensorType>(x.getType());
  Value init = emptyTensor(b, {type.getDimSize(1), type.getDimSize(0)},
                           type.getElementType());
  return linalg::TransposeOp::create(b, x, init, ArrayRef<int64_t>{1, 0})
      ->getResult(0);
}

/// Σ over the rows of `[R, C]`: an f32 `[C]`.
Value columnSums(ImplicitLocOpBuilder &b, Value x) {
  MLIRContext *ctx = b.getContext();
  int64_t cols = cast<RankedTensorType>(x.getType()).getDimSize(1);
  return generic(b, x, filledTensor(b, {cols}, 0.0),
                 {identity(ctx, 2), projection(ctx, 2, {1})}, 2, {0},
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   linalg::YieldOp::create(
                       ib, ValueRange{arith::AddFOp::create(
                               ib, a[1], toF32(ib, a[0]), reassocFlags(ctx))});
                 })[0];
}

/// dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ_rows dy, on rows collapsed to 2-D.
struct LowerDenseGrad : OpRewritePattern<DenseGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(DenseGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto xType = cast<RankedTensorType>(op.getInput().getType());
    auto wType = cast<RankedTensorType>(op.getWeight().getType());
    if (!xType.hasStaticShape() || !wType.hasStaticShape() ||
        xType.getRank() < 2)
      return rewriter.notifyMatchFailure(op, "needs static shapes, rank ≥ 2");
    Value x = collapseRows(b, op.getInput());
    Value dy = collapseRows(b, op.getResultGrad());
    int64_t rows = cast<RankedTensorType>(x.getType()).getDimSize(0);
    int64_t k = wType.getDimSize(0), n = wType.getDimSize(1);
    Value dx = matmul(b, dy, transposed(b, op.getWeight()), rows, k);
    Value dw = matmul(b, transposed(b, x), dy, k, n);
    Value db = columnSums(b, dy);
    rewriter.replaceOp(
        op,
        {expandRows(b, dx, cast<RankedTensorType>(op.getInputGrad().getType())),
         dw, db});
    return success();
  }
};

/// Two row reductions (Σ g, Σ g·x̂), the elementwise input gradient, and one
/// column reduction for gamma and beta; statistics recomputed from x.
struct LowerLayerNormGrad : OpRewritePattern<LayerNormGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getInput().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    unsigned rank = type.getRank();
    int64_t n = type.getShape().back();
    SmallVector<int64_t> rowShape(type.getShape().drop_back());
    SmallVector<unsigned> rowDims;
    for (unsigned d = 0; d + 1 < rank; ++d)
      rowDims.push_back(d);
    AffineMap all = identity(ctx, rank);
    AffineMap row = projection(ctx, rank, rowDims);
    AffineMap last = projection(ctx, rank, {rank - 1});
    auto [mean, invStd] = layerNormStatistics(
        b, op.getInput(), op.getEpsilon().convertToDouble());
    Value x = op.getInput(), gamma = op.getGamma(), dy = op.getResultGrad();
    // x̂ and g = dy·gamma from the generic's arguments (x, mean, r, gamma, dy).
    auto xHat = [](ImplicitLocOpBuilder &ib, ValueRange a) {
      return arith::MulFOp::create(
          ib, arith::SubFOp::create(ib, toF32(ib, a[0]), a[1]), a[2]);
    };
    auto g = [](ImplicitLocOpBuilder &ib, ValueRange a) {
      return arith::MulFOp::create(ib, toF32(ib, a[4]), toF32(ib, a[3]));
    };

    SmallVector<Value> sums = generic(
        b, ValueRange{x, mean, invStd, gamma, dy},
        ValueRange{filledTensor(b, rowShape, 0.0),
                   filledTensor(b, rowShape, 0.0)},
        {all, row, row, last, all, row, row}, rank, {rank - 1},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value gv = g(ib, a);
          Value gx = arith::MulFOp::create(ib, gv, xHat(ib, a));
          linalg::YieldOp::create(
              ib, ValueRange{
                      arith::AddFOp::create(ib, a[5], gv, reassocFlags(ctx)),
                      arith::AddFOp::create(ib, a[6], gx, reassocFlags(ctx))});
        });
    double invN = 1.0 / static_cast<double>(n);
    Value dx = generic(
        b, ValueRange{x, mean, invStd, gamma, dy, sums[0], sums[1]},
        emptyTensor(b, type.getShape(), b.getF32Type()),
        {all, row, row, last, all, row, row, all}, rank, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          // r · (g − Σg/n − x̂ · Σ(g·x̂)/n)
          Value meanG = arith::MulFOp::create(ib, a[5], f32Const(ib, invN));
          Value meanGx = arith::MulFOp::create(ib, a[6], f32Const(ib, invN));
          Value v = arith::SubFOp::create(ib, g(ib, a), meanG);
          v = arith::SubFOp::create(
              ib, v, arith::MulFOp::create(ib, xHat(ib, a), meanGx));
          linalg::YieldOp::create(
              ib, ValueRange{arith::MulFOp::create(ib, a[2], v)});
        })[0];
    SmallVector<Value> params = generic(
        b, ValueRange{x, mean, invStd, gamma, dy},
        ValueRange{filledTensor(b, {n}, 0.0), filledTensor(b, {n}, 0.0)},
        {all, row, row, last, all, last, last}, rank, rowDims,
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value d = toF32(ib, a[4]);
          linalg::YieldOp::create(
              ib, ValueRange{
                      arith::AddFOp::create(
                          ib, a[5], arith::MulFOp::create(ib, d, xHat(ib, a)),
                          reassocFlags(ctx)),
                      arith::AddFOp::create(ib, a[6], d, reassocFlags(ctx))});
        });
    rewriter.replaceOp(op, {dx, params[0], params[1]});
    return success();
  }
};

/// Row max and Σ exp, the total weight, then one elementwise generic:
/// w/Σw · (softmax − one-hot).
struct LowerSoftmaxCrossEntropyGrad
    : OpRewritePattern<SoftmaxCrossEntropyGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SoftmaxCrossEntropyGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getLogits().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    SmallVector<int64_t> rows = {type.getDimSize(0), type.getDimSize(1)};
    AffineMap all = identity(ctx, 3), row = projection(ctx, 3, {0, 1});
    Value logits = op.getLogits();
    Value max = generic(
        b, logits,
        filledTensor(b, rows, -std::numeric_limits<double>::infinity()),
        {all, row}, 3, {2}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          linalg::YieldOp::create(
              ib, ValueRange{fastMax(ib, a[1], toF32(ib, a[0]))});
        })[0];
    Value sumExp = generic(
        b, ValueRange{logits, max}, filledTensor(b, rows, 0.0), {all, row, row},
        3, {2}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value e = math::ExpOp::create(
              ib, arith::SubFOp::create(ib, toF32(ib, a[0]), a[1]));
          linalg::YieldOp::create(ib, ValueRange{arith::AddFOp::create(
                                          ib, a[2], e, reassocFlags(ctx))});
        })[0];
    Value weights = op.getWeights();
    Value total;
    if (weights) {
      total = generic(b, weights, filledTensor(b, {}, 0.0),
                      {identity(ctx, 2), AffineMap::get(2, 0, {}, ctx)}, 2,
                      {0, 1}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                        linalg::YieldOp::create(
                            ib, ValueRange{arith::AddFOp::create(
                                    ib, a[1], toF32(ib, a[0]))});
                      })[0];
    } else {
      total = filledTensor(b, {}, double(rows[0] * rows[1]));
    }
    SmallVector<Value> inputs = {logits, max, sumExp, op.getTargets(), total};
    SmallVector<AffineMap> maps = {all, row, row, row,
                                   AffineMap::get(3, 0, {}, ctx)};
    if (weights) {
      inputs.push_back(weights);
      maps.push_back(row);
    }
    maps.push_back(all);
    Value grad =
        generic(b, inputs, emptyTensor(b, type.getShape(), b.getF32Type()),
                maps, 3, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  Value vocabIndex = loopIndices(ib, 3)[2];
                  Value target =
                      arith::IndexCastOp::create(ib, ib.getIndexType(), a[3]);
                  Value p = arith::DivFOp::create(
                      ib,
                      math::ExpOp::create(
                          ib, arith::SubFOp::create(ib, toF32(ib, a[0]), a[1])),
                      a[2]);
                  Value hit = arith::CmpIOp::create(
                      ib, arith::CmpIPredicate::eq, vocabIndex, target);
                  Value d = arith::SubFOp::create(
                      ib, p,
                      arith::SelectOp::create(ib, hit, f32Const(ib, 1.0),
                                              f32Const(ib, 0.0)));
                  Value w = weights ? toF32(ib, a[5]) : f32Const(ib, 1.0);
                  Value scale = arith::DivFOp::create(ib, w, a[4]);
                  linalg::YieldOp::create(
                      ib, ValueRange{arith::MulFOp::create(ib, scale, d)});
                })[0];
    rewriter.replaceOp(op, grad);
    return success();
  }
};

/// One elementwise generic producing the parameter and both moments; the
/// bias corrections are computed once from the step.
struct LowerAdamUpdate : OpRewritePattern<AdamUpdateOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AdamUpdateOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getParam().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    unsigned rank = type.getRank();
    double beta1 = op.getBeta1().convertToDouble();
    double beta2 = op.getBeta2().convertToDouble();
    double eps = op.getEpsilon().convertToDouble();
    double decay = op.getWeightDecay().convertToDouble();
    Value lr = tensor::ExtractOp::create(b, op.getLr(), ValueRange{});
    Value step = tensor::ExtractOp::create(b, op.getStep(), ValueRange{});
    auto correction = [&](double beta) {
      return arith::SubFOp::create(
          b, f32Const(b, 1.0),
          math::PowFOp::create(b, f32Const(b, beta), step));
    };
    Value c1 = correction(beta1), c2 = correction(beta2);
    AffineMap all = identity(ctx, rank);
    Type elementType = type.getElementType();
    SmallVector<Value> results = generic(
        b, ValueRange{op.getParam(), op.getGrad(), op.getM(), op.getV()},
        ValueRange{emptyTensor(b, type.getShape(), elementType),
                   emptyTensor(b, type.getShape(), b.getF32Type()),
                   emptyTensor(b, type.getShape(), b.getF32Type())},
        SmallVector<AffineMap>(7, all), rank, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          auto mul = [&](Value x, Value y) {
            return arith::MulFOp::create(ib, x, y).getResult();
          };
          auto add = [&](Value x, Value y) {
            return arith::AddFOp::create(ib, x, y).getResult();
          };
          Value p = toF32(ib, a[0]), g = toF32(ib, a[1]);
          Value m = add(mul(f32Const(ib, beta1), a[2]),
                        mul(f32Const(ib, 1.0 - beta1), g));
          Value v = add(mul(f32Const(ib, beta2), a[3]),
                        mul(f32Const(ib, 1.0 - beta2), mul(g, g)));
          Value mHat = arith::DivFOp::create(ib, m, c1);
          Value vHat = arith::DivFOp::create(ib, v, c2);
          Value update = arith::DivFOp::create(
              ib, mHat, add(math::SqrtOp::create(ib, vHat), f32Const(ib, eps)));
          if (decay != 0.0)
            update = add(update, mul(f32Const(ib, decay), p));
          Value next = arith::SubFOp::create(ib, p, mul(lr, update));
          linalg::YieldOp::create(
              ib, ValueRange{fromF32(ib, next, elementType), m, v});
        });
    rewriter.replaceOp(op, results);
    return success();
  }
};

} // namespace

void reformer::populateGradientLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerDenseGrad, LowerLayerNormGrad, LowerSoftmaxCrossEntropyGrad,
               LowerAdamUpdate>(patterns.getContext());
}
