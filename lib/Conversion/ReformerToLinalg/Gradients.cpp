//===- Gradients.cpp - gradient ops and optimizer updates → linalg --------===//
//
// The backward ops of the position-wise layers and the Adam update, as
// linalg on tensors: the matmuls go through the same vectorized kernels as
// the forward, the rest are fused elementwise generics and row reductions.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Conversion/Passes.h"
#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

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

/// The activation and its derivative at `x`.
std::pair<Value, Value> activate(ImplicitLocOpBuilder &b, Activation act,
                                 Value x) {
  switch (act) {
  case Activation::relu:
    return {relu(b, x), reluGrad(b, x)};
  case Activation::gelu:
    return {gelu(b, x), geluGrad(b, x)};
  case Activation::gelu_tanh:
    return {geluTanh(b, x), geluTanhGrad(b, x)};
  case Activation::silu:
    return {silu(b, x), siluGrad(b, x)};
  }
  llvm_unreachable("unknown activation");
}

/// A serial loop over chunks carrying the four weight-gradient
/// accumulators (the matmuls inside use every core); each chunk recomputes
/// its pre-activation and writes its rows of the input gradient.
struct LowerChunkedFfnGrad : OpRewritePattern<ChunkedFfnGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ChunkedFfnGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getInput().getType());
    auto w1Type = cast<RankedTensorType>(op.getW1().getType());
    if (!type.hasStaticShape() || !w1Type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    int64_t m = type.getDimSize(2), f = w1Type.getDimSize(1);
    Value x = collapseRows(b, op.getInput());
    Value dy = collapseRows(b, op.getResultGrad());
    int64_t rows = cast<RankedTensorType>(x.getType()).getDimSize(0);
    int64_t chunk = std::min<int64_t>(op.getChunk(), rows);
    Activation act = op.getActivation();
    Value w1T = transposed(b, op.getW1()), w2T = transposed(b, op.getW2());
    Type f32 = b.getF32Type();
    AffineMap id2 = identity(ctx, 2), col = projection(ctx, 2, {1});

    // One chunk of `size` rows at `offset`: updates the accumulators
    // (dx, dW1, db1, dW2, db2) and returns them.
    auto chunkBody = [&](ImplicitLocOpBuilder &ib, ValueRange acc,
                         OpFoldResult offset, int64_t size) {
      SmallVector<OpFoldResult> strides(2, ib.getIndexAttr(1));
      auto rowsOf = [&](Value t, int64_t width) -> Value {
        return tensor::ExtractSliceOp::create(
            ib,
            RankedTensorType::get(
                {size, width},
                cast<RankedTensorType>(t.getType()).getElementType()),
            t, SmallVector<OpFoldResult>{offset, ib.getIndexAttr(0)},
            SmallVector<OpFoldResult>{ib.getIndexAttr(size),
                                      ib.getIndexAttr(width)},
            strides);
      };
      Value xc = rowsOf(x, m), dyc = rowsOf(dy, m);
      Value pre = matmul(ib, xc, op.getW1(), size, f);
      // h = act(a) and act'(a), a = x·W1 + b1.
      SmallVector<Value> hd =
          generic(ib, ValueRange{pre, op.getB1()},
                  ValueRange{emptyTensor(ib, {size, f}, f32),
                             emptyTensor(ib, {size, f}, f32)},
                  {id2, col, id2, id2}, 2, {},
                  [&](ImplicitLocOpBuilder &gb, ValueRange a) {
                    Value v = arith::AddFOp::create(gb, a[0], toF32(gb, a[1]));
                    auto [h, d] = activate(gb, act, v);
                    linalg::YieldOp::create(gb, ValueRange{h, d});
                  });
      Value dW2 =
          linalg::MatmulOp::create(ib, TypeRange{acc[3].getType()},
                                   ValueRange{transposed(ib, hd[0]), dyc},
                                   ValueRange{acc[3]})
              .getResult(0);
      Value db2 = generic(ib, dyc, acc[4], {id2, col}, 2, {0},
                          [&](ImplicitLocOpBuilder &gb, ValueRange a) {
                            linalg::YieldOp::create(
                                gb, ValueRange{arith::AddFOp::create(
                                        gb, a[1], toF32(gb, a[0]))});
                          })[0];
      Value dh = matmul(ib, dyc, w2T, size, f);
      Value da = generic(
          ib, ValueRange{dh, hd[1]}, emptyTensor(ib, {size, f}, f32),
          {id2, id2, id2}, 2, {}, [&](ImplicitLocOpBuilder &gb, ValueRange a) {
            linalg::YieldOp::create(
                gb, ValueRange{arith::MulFOp::create(gb, a[0], a[1])});
          })[0];
      Value dW1 = linalg::MatmulOp::create(ib, TypeRange{acc[1].getType()},
                                           ValueRange{transposed(ib, xc), da},
                                           ValueRange{acc[1]})
                      .getResult(0);
      Value db1 =
          generic(ib, da, acc[2], {id2, col}, 2, {0},
                  [&](ImplicitLocOpBuilder &gb, ValueRange a) {
                    linalg::YieldOp::create(
                        gb, ValueRange{arith::AddFOp::create(gb, a[1], a[0])});
                  })[0];
      Value dxc = matmul(ib, da, w1T, size, m);
      Value dx = tensor::InsertSliceOp::create(
          ib, dxc, acc[0],
          SmallVector<OpFoldResult>{offset, ib.getIndexAttr(0)},
          SmallVector<OpFoldResult>{ib.getIndexAttr(size), ib.getIndexAttr(m)},
          strides);
      return SmallVector<Value>{dx, dW1, db1, dW2, db2};
    };

    SmallVector<Value> acc = {
        emptyTensor(b, {rows, m}, f32), filledTensor(b, {m, f}, 0.0),
        filledTensor(b, {f}, 0.0), filledTensor(b, {f, m}, 0.0),
        filledTensor(b, {m}, 0.0)};
    int64_t full = rows / chunk, rest = rows % chunk;
    if (full > 0) {
      auto loop = scf::ForOp::create(
          b, indexConst(b, 0), indexConst(b, full * chunk),
          indexConst(b, chunk), acc,
          [&](OpBuilder &nested, Location loc, Value iv, ValueRange iter) {
            ImplicitLocOpBuilder ib(loc, nested);
            scf::YieldOp::create(ib, chunkBody(ib, iter, iv, chunk));
          });
      acc = SmallVector<Value>(loop.getResults());
    }
    if (rest > 0)
      acc = chunkBody(b, acc, b.getIndexAttr(full * chunk), rest);
    acc[0] = expandRows(b, acc[0],
                        cast<RankedTensorType>(op.getInputGrad().getType()));
    rewriter.replaceOp(op, acc);
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
    SmallVector<unsigned> rowDims = leadingDims(rank);
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
    auto [max, sumExp] = rowMaxAndSumExp(b, logits);
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
/// Scatter-add of the output gradient rows into the table rows of their
/// tokens: parallel over blocks of columns (so no two workers add into the
/// same element), serial over positions. Ids outside [0, V) add nothing.
struct LowerEmbeddingGrad : OpRewritePattern<EmbeddingGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto dyType = cast<RankedTensorType>(op.getResultGrad().getType());
    auto gradType = cast<RankedTensorType>(op.getTableGrad().getType());
    if (!dyType.hasStaticShape() || !gradType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> s = dyType.getShape();
    int64_t vocab = gradType.getDimSize(0), width = s[2];
    int64_t block = width % 16 == 0 ? 16 : 1;
    Value grad = zeroBuffer(b, gradType.getShape());
    Value tokens = toBuffer(b, op.getTokens());
    Value dy = toBuffer(b, op.getResultGrad());
    Value zero = indexConst(b, 0), one = indexConst(b, 1);
    scf::ParallelOp::create(
        b, ValueRange{zero}, ValueRange{indexConst(b, width / block)},
        ValueRange{one}, [&](OpBuilder &nested, Location loc, ValueRange ivs) {
          ImplicitLocOpBuilder pb(loc, nested);
          Value col0 = arith::MulIOp::create(pb, ivs[0], indexConst(pb, block));
          forLoop(
              pb, zero, indexConst(pb, s[0]), 1,
              [&](ImplicitLocOpBuilder &bb, Value batch) {
                forLoop(
                    bb, zero, indexConst(bb, s[1]), 1,
                    [&](ImplicitLocOpBuilder &ib, Value i) {
                      Value id = arith::IndexCastOp::create(
                          ib, ib.getIndexType(),
                          memref::LoadOp::create(ib, tokens,
                                                 ValueRange{batch, i}));
                      Value valid = arith::AndIOp::create(
                          ib,
                          arith::CmpIOp::create(ib, arith::CmpIPredicate::sge,
                                                id, zero),
                          arith::CmpIOp::create(ib, arith::CmpIPredicate::slt,
                                                id, indexConst(ib, vocab)));
                      scf::IfOp::create(
                          ib, valid, [&](OpBuilder &n2, Location l2) {
                            ImplicitLocOpBuilder tb(l2, n2);
                            forLoop(tb, zero, indexConst(tb, block), 1,
                                    [&](ImplicitLocOpBuilder &lb, Value e) {
                                      Value col =
                                          arith::AddIOp::create(lb, col0, e);
                                      Value x = toF32(
                                          lb, memref::LoadOp::create(
                                                  lb, dy,
                                                  ValueRange{batch, i, col}));
                                      Value acc = memref::LoadOp::create(
                                          lb, grad, ValueRange{id, col});
                                      memref::StoreOp::create(
                                          lb, arith::AddFOp::create(lb, acc, x),
                                          grad, ValueRange{id, col});
                                    });
                            scf::YieldOp::create(tb);
                          });
                    });
              });
          scf::ReduceOp::create(pb);
        });
    rewriter.replaceOp(op, toTensor(b, grad));
    return success();
  }
};

/// The positions, padded with zero gradients to Π n_t, become the axes
/// `[B, n_1, …, n_k, M]`; weight t's gradient sums its column block over
/// every axis but its own.
struct LowerAxialPosEmbeddingGrad : OpRewritePattern<AxialPosEmbeddingGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AxialPosEmbeddingGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto dyType = cast<RankedTensorType>(op.getResultGrad().getType());
    if (!dyType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> s = dyType.getShape();
    SmallVector<int64_t> axes;
    int64_t positions = 1;
    for (Value w : op.getWeightGrads()) {
      auto type = cast<RankedTensorType>(w.getType());
      if (!type.hasStaticShape())
        return rewriter.notifyMatchFailure(op, "needs static shapes");
      axes.push_back(type.getDimSize(0));
      positions *= axes.back();
    }
    Value dy = scaledF32Tensor(b, op.getResultGrad());
    if (positions > s[1]) {
      SmallVector<OpFoldResult> offsets(3, b.getIndexAttr(0));
      SmallVector<OpFoldResult> sizes = {
          b.getIndexAttr(s[0]), b.getIndexAttr(s[1]), b.getIndexAttr(s[2])};
      SmallVector<OpFoldResult> strides(3, b.getIndexAttr(1));
      dy = tensor::InsertSliceOp::create(
          b, dy, filledTensor(b, {s[0], positions, s[2]}, 0.0), offsets, sizes,
          strides);
    }
    int64_t k = axes.size();
    SmallVector<int64_t> expandedShape = {s[0]};
    llvm::append_range(expandedShape, axes);
    expandedShape.push_back(s[2]);
    SmallVector<ReassociationIndices> groups = {{0}, {}, {k + 1}};
    for (int64_t t = 0; t < k; ++t)
      groups[1].push_back(t + 1);
    Value expanded = tensor::ExpandShapeOp::create(
        b, RankedTensorType::get(expandedShape, b.getF32Type()), dy, groups);

    SmallVector<Value> grads;
    int64_t column = 0;
    unsigned numDims = k + 2;
    for (auto [t, gradValue] : llvm::enumerate(op.getWeightGrads())) {
      int64_t d = cast<RankedTensorType>(gradValue.getType()).getDimSize(1);
      SmallVector<int64_t> sliceShape(expandedShape);
      sliceShape.back() = d;
      SmallVector<OpFoldResult> offsets(numDims, b.getIndexAttr(0)), sizes,
          strides(numDims, b.getIndexAttr(1));
      offsets.back() = b.getIndexAttr(column);
      for (int64_t extent : sliceShape)
        sizes.push_back(b.getIndexAttr(extent));
      Value block = tensor::ExtractSliceOp::create(
          b, RankedTensorType::get(sliceShape, b.getF32Type()), expanded,
          offsets, sizes, strides);
      SmallVector<unsigned> reductions;
      for (unsigned dim = 0; dim + 1 < numDims; ++dim)
        if (dim != t + 1)
          reductions.push_back(dim);
      grads.push_back(generic(
          b, block, filledTensor(b, {axes[t], d}, 0.0),
          {identity(ctx, numDims),
           projection(ctx, numDims, {unsigned(t + 1), numDims - 1})},
          numDims, reductions, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
            linalg::YieldOp::create(
                ib, ValueRange{arith::AddFOp::create(ib, a[1], a[0])});
          })[0]);
      column += d;
    }
    rewriter.replaceOp(op, grads);
    return success();
  }
};

/// Σ g² of every gradient into one 0-D accumulator (a chain of full
/// reductions), then the clip factor from its square root.
struct LowerClipScale : OpRewritePattern<ClipScaleOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ClipScaleOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Value sum = filledTensor(b, {}, 0.0);
    for (Value grad : op.getGrads()) {
      unsigned rank = cast<RankedTensorType>(grad.getType()).getRank();
      SmallVector<unsigned> all;
      for (unsigned d = 0; d < rank; ++d)
        all.push_back(d);
      sum = generic(b, grad, sum,
                    {identity(ctx, rank), AffineMap::get(rank, 0, ctx)}, rank,
                    all, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                      Value g = toF32(ib, a[0]);
                      linalg::YieldOp::create(
                          ib, ValueRange{arith::AddFOp::create(
                                  ib, a[1], arith::MulFOp::create(ib, g, g),
                                  reassocFlags(ctx))});
                    })[0];
    }
    Value norm = math::SqrtOp::create(
        b, tensor::ExtractOp::create(b, sum, ValueRange{}));
    Value factor = arith::DivFOp::create(
        b, f32Const(b, op.getMaxNorm().convertToDouble()),
        arith::AddFOp::create(b, norm, f32Const(b, 1e-6)));
    Value scale = arith::MinimumFOp::create(b, factor, f32Const(b, 1.0));
    rewriter.replaceOp(op, tensor::FromElementsOp::create(
                               b, RankedTensorType::get({}, b.getF32Type()),
                               ValueRange{scale}));
    return success();
  }
};

/// The 0-D operands of an optimizer update as scalars: learning rate, step
/// number, and the optional gradient scale (null without).
template <typename UpdateOp>
std::tuple<Value, Value, Value> optimizerScalars(ImplicitLocOpBuilder &b,
                                                 UpdateOp op) {
  auto scalar = [&](Value t) -> Value {
    return t ? Value(tensor::ExtractOp::create(b, t, ValueRange{})) : Value();
  };
  return {scalar(op.getLr()), scalar(op.getStep()), scalar(op.getScale())};
}

/// Adafactor without materializing the update: the row and column means of
/// g² feed the factored moments; the update u is recomputed elementwise in
/// the reduction for rms(u) and again in the final write.
struct LowerAdafactorUpdate : OpRewritePattern<AdafactorUpdateOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AdafactorUpdateOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getParam().getType());
    if (!type.hasStaticShape() || type.getRank() < 1)
      return rewriter.notifyMatchFailure(op, "needs static shapes, rank ≥ 1");
    bool factored = bool(op.getVCol());
    // Work on [rows, cols] (factored) or [n] (not).
    Value param = op.getParam(), grad = op.getGrad();
    if (factored && type.getRank() > 2) {
      param = collapseRows(b, param);
      grad = collapseRows(b, grad);
    }
    auto shape = cast<RankedTensorType>(param.getType()).getShape();
    unsigned rank = shape.size();
    double count = double(type.getNumElements());
    double eps1 = op.getEpsilon1().convertToDouble();
    double eps2 = op.getEpsilon2().convertToDouble();
    double threshold = op.getClippingThreshold().convertToDouble();
    auto [lr, step, scale] = optimizerScalars(b, op);
    // ρ = 1 − t^(−decay_rate): the weight of the old moments.
    Value rho = arith::SubFOp::create(
        b, f32Const(b, 1.0),
        math::PowFOp::create(
            b, step, f32Const(b, -op.getDecayRate().convertToDouble())));
    Value mix = arith::SubFOp::create(b, f32Const(b, 1.0), rho);
    auto scaled = [&](ImplicitLocOpBuilder &ib, Value g) {
      g = toF32(ib, g);
      return scale ? arith::MulFOp::create(ib, g, scale).getResult() : g;
    };
    auto squared = [&](ImplicitLocOpBuilder &ib, Value g) {
      Value s = scaled(ib, g);
      return arith::AddFOp::create(ib, arith::MulFOp::create(ib, s, s),
                                   f32Const(ib, eps1))
          .getResult();
    };
    auto blend = [&](ImplicitLocOpBuilder &ib, Value old, Value fresh) {
      return arith::AddFOp::create(ib, arith::MulFOp::create(ib, rho, old),
                                   arith::MulFOp::create(ib, mix, fresh))
          .getResult();
    };
    auto fullSum = [&](Value x, GenericBody body) {
      SmallVector<unsigned> all;
      for (unsigned d = 0; d < rank; ++d)
        all.push_back(d);
      return generic(b, x, filledTensor(b, {}, 0.0),
                     {identity(ctx, rank), AffineMap::get(rank, 0, ctx)}, rank,
                     all, body)[0];
    };
    auto extract = [&](Value t) -> Value {
      return tensor::ExtractOp::create(b, t, ValueRange{});
    };

    Value newRow, newCol, meanRow;
    if (factored) {
      int64_t rows = shape[0], cols = shape[1];
      auto meanOf = [&](unsigned keep, unsigned reduce, int64_t n, Value old) {
        Value sums = generic(
            b, grad, filledTensor(b, {shape[keep]}, 0.0),
            {identity(ctx, 2), projection(ctx, 2, {keep})}, 2, {reduce},
            [&](ImplicitLocOpBuilder &ib, ValueRange a) {
              linalg::YieldOp::create(ib, ValueRange{arith::AddFOp::create(
                                              ib, a[1], squared(ib, a[0]))});
            })[0];
        return generic(
            b, ValueRange{old, sums},
            emptyTensor(b, {shape[keep]}, b.getF32Type()),
            SmallVector<AffineMap>(3, identity(ctx, 1)), 1, {},
            [&](ImplicitLocOpBuilder &ib, ValueRange a) {
              Value mean =
                  arith::MulFOp::create(ib, a[1], f32Const(ib, 1.0 / n));
              linalg::YieldOp::create(ib, ValueRange{blend(ib, a[0], mean)});
            })[0];
      };
      newRow = meanOf(0, 1, cols, op.getVRow());
      newCol = meanOf(1, 0, rows, op.getVCol());
      meanRow = arith::MulFOp::create(
          b,
          extract(generic(b, newRow, filledTensor(b, {}, 0.0),
                          {identity(ctx, 1), AffineMap::get(1, 0, ctx)}, 1, {0},
                          [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                            linalg::YieldOp::create(
                                ib, ValueRange{
                                        arith::AddFOp::create(ib, a[1], a[0])});
                          })[0]),
          f32Const(b, 1.0 / rows));
    } else {
      newRow =
          generic(b, ValueRange{op.getVRow(), grad},
                  emptyTensor(b, shape, b.getF32Type()),
                  SmallVector<AffineMap>(3, identity(ctx, 1)), 1, {},
                  [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                    linalg::YieldOp::create(
                        ib, ValueRange{blend(ib, a[0], squared(ib, a[1]))});
                  })[0];
    }
    // u = g' · rsqrt(v̂), v̂ the (factored) second moment of the element.
    SmallVector<Value> momentInputs = {newRow};
    SmallVector<AffineMap> momentMaps = {projection(ctx, rank, {0})};
    if (factored) {
      momentInputs.push_back(newCol);
      momentMaps.push_back(projection(ctx, rank, {1}));
    }
    auto update = [&](ImplicitLocOpBuilder &ib, Value g, ValueRange v) {
      Value second = v[0];
      if (factored)
        second = arith::MulFOp::create(
            ib, arith::DivFOp::create(ib, v[0], meanRow), v[1]);
      return arith::MulFOp::create(ib, scaled(ib, g),
                                   math::RsqrtOp::create(ib, second))
          .getResult();
    };
    SmallVector<Value> inputs = {grad};
    llvm::append_range(inputs, momentInputs);
    SmallVector<AffineMap> maps = {identity(ctx, rank)};
    llvm::append_range(maps, momentMaps);
    maps.push_back(AffineMap::get(rank, 0, ctx));
    SmallVector<unsigned> all;
    for (unsigned d = 0; d < rank; ++d)
      all.push_back(d);
    Value sumU2 =
        generic(b, inputs, filledTensor(b, {}, 0.0), maps, rank, all,
                [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  Value u = update(ib, a[0], a.drop_front().drop_back());
                  linalg::YieldOp::create(
                      ib, ValueRange{arith::AddFOp::create(
                              ib, a.back(), arith::MulFOp::create(ib, u, u))});
                })[0];
    Value sumP2 = fullSum(param, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
      Value p = toF32(ib, a[0]);
      linalg::YieldOp::create(ib,
                              ValueRange{arith::AddFOp::create(
                                  ib, a[1], arith::MulFOp::create(ib, p, p))});
    });
    auto rms = [&](Value sum) -> Value {
      return math::SqrtOp::create(
          b, arith::MulFOp::create(b, extract(sum), f32Const(b, 1.0 / count)));
    };
    Value denom = arith::MaximumFOp::create(
        b, f32Const(b, 1.0),
        arith::MulFOp::create(b, rms(sumU2), f32Const(b, 1.0 / threshold)));
    Value stepSize = arith::DivFOp::create(
        b,
        arith::MulFOp::create(
            b, lr, arith::MaximumFOp::create(b, f32Const(b, eps2), rms(sumP2))),
        denom);
    Type elementType = type.getElementType();
    SmallVector<Value> finalInputs = {param, grad};
    llvm::append_range(finalInputs, momentInputs);
    SmallVector<AffineMap> finalMaps = {identity(ctx, rank),
                                        identity(ctx, rank)};
    llvm::append_range(finalMaps, momentMaps);
    finalMaps.push_back(identity(ctx, rank));
    Value next = generic(
        b, finalInputs, emptyTensor(b, shape, elementType), finalMaps, rank, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value u = update(ib, a[1], a.drop_front(2).drop_back());
          Value p = arith::SubFOp::create(
              ib, toF32(ib, a[0]), arith::MulFOp::create(ib, stepSize, u));
          linalg::YieldOp::create(ib, ValueRange{fromF32(ib, p, elementType)});
        })[0];
    if (factored && type.getRank() > 2)
      next = expandRows(b, next, type);
    SmallVector<Value> results = {next, newRow};
    if (factored)
      results.push_back(newCol);
    rewriter.replaceOp(op, results);
    return success();
  }
};

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
    auto [lr, step, scale] = optimizerScalars(b, op);
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
          if (scale)
            g = mul(g, scale);
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
    // Elementwise, inputs (param, grad, m, v): the gradient can live in the
    // new parameter's buffer (rf-place-gradients-in-outputs), and the GPU
    // target merges every parameter's update into one kernel
    // (rf-fuse-optimizer-updates).
    results[0].getDefiningOp()->setAttr(kOptimizerUpdateAttrName,
                                        b.getUnitAttr());
    rewriter.replaceOp(op, results);
    return success();
  }
};

} // namespace

void reformer::populateGradientLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerEmbeddingGrad, LowerAxialPosEmbeddingGrad, LowerClipScale,
               LowerAdafactorUpdate>(patterns.getContext());
  patterns.add<LowerDenseGrad, LowerChunkedFfnGrad, LowerLayerNormGrad,
               LowerSoftmaxCrossEntropyGrad, LowerAdamUpdate>(
      patterns.getContext());
}
