//===- LayerNormAndDense.cpp - layer_norm, dense, chunked_ffn → linalg ----===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

/// Three generics: row sums, row sums of squared deviations, normalize.
struct LowerLayerNorm : OpRewritePattern<LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getInput().getType());
    unsigned rank = type.getRank();
    SmallVector<unsigned> rowDims = leadingDims(rank);
    AffineMap all = identity(ctx, rank);
    AffineMap row = projection(ctx, rank, rowDims);
    AffineMap last = projection(ctx, rank, {rank - 1});
    auto [mean, invStd] = layerNormStatistics(
        b, op.getInput(), op.getEpsilon().convertToDouble());
    // The result may be narrower than the input (mixed precision).
    Type elementType = op.getType().getElementType();
    Value result = generic(
        b, ValueRange{op.getInput(), mean, invStd, op.getGamma(), op.getBeta()},
        emptyTensor(b, type.getShape(), elementType),
        {all, row, row, last, last, all}, rank, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value d = arith::SubFOp::create(ib, toF32(ib, a[0]), a[1]);
          Value y = arith::MulFOp::create(ib, d, a[2]);
          y = arith::AddFOp::create(
              ib, arith::MulFOp::create(ib, y, toF32(ib, a[3])),
              toF32(ib, a[4]));
          linalg::YieldOp::create(ib, ValueRange{fromF32(ib, y, elementType)});
        })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// `act(acc + bias)` rounded to `elementType`, elementwise over `[rows, N]`.
static Value
biasAndActivate(ImplicitLocOpBuilder &b, Value acc, Value bias,
                Type elementType,
                function_ref<Value(ImplicitLocOpBuilder &, Value)> activation) {
  MLIRContext *ctx = b.getContext();
  auto type = cast<RankedTensorType>(acc.getType());
  SmallVector<Value> inputs = {acc};
  SmallVector<AffineMap> maps = {identity(ctx, 2)};
  if (bias) {
    inputs.push_back(bias);
    maps.push_back(projection(ctx, 2, {1}));
  }
  maps.push_back(identity(ctx, 2));
  return generic(b, inputs, emptyTensor(b, type.getShape(), elementType), maps,
                 2, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   Value v = a[0];
                   if (bias)
                     v = arith::AddFOp::create(ib, v, toF32(ib, a[1]));
                   if (activation)
                     v = activation(ib, v);
                   linalg::YieldOp::create(
                       ib, ValueRange{fromF32(ib, v, elementType)});
                 })[0];
}

struct LowerDense : OpRewritePattern<DenseOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(DenseOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto resultType = cast<RankedTensorType>(op.getType());
    if (!resultType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    Value x = collapseRows(b, op.getInput());
    int64_t rows = cast<RankedTensorType>(x.getType()).getDimSize(0);
    int64_t cols = resultType.getShape().back();
    Value acc = matmul(b, x, op.getWeight(), rows, cols);
    Value y = biasAndActivate(b, acc, op.getBias(), resultType.getElementType(),
                              nullptr);
    rewriter.replaceOp(op, expandRows(b, y, resultType));
    return success();
  }
};

static function_ref<Value(ImplicitLocOpBuilder &, Value)>
activationFn(Activation activation) {
  switch (activation) {
  case Activation::relu:
    return relu;
  case Activation::gelu:
    return gelu;
  case Activation::gelu_tanh:
    return geluTanh;
  case Activation::silu:
    return silu;
  }
  llvm_unreachable("unknown activation");
}

/// A loop over chunks of rows whose body does both matmuls with bias and
/// activation; only a `chunk × d_ff` intermediate exists at a time.
struct LowerChunkedFfn : OpRewritePattern<ChunkedFfnOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ChunkedFfnOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.hasStaticShape() ||
        !cast<RankedTensorType>(op.getW1().getType()).hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    Type elementType = type.getElementType();
    int64_t m = type.getShape().back();
    int64_t f = cast<RankedTensorType>(op.getW1().getType()).getDimSize(1);
    Value x = collapseRows(b, op.getInput());
    int64_t rows = cast<RankedTensorType>(x.getType()).getDimSize(0);
    int64_t chunk = std::min<int64_t>(op.getChunk(), rows);
    auto act = activationFn(op.getActivation());

    // One chunk of `size` rows starting at `offset`: its FFN output.
    auto offsetsAt = [&](OpFoldResult offset) {
      return SmallVector<OpFoldResult>{offset, b.getIndexAttr(0)};
    };
    auto sizesOf = [&](int64_t size) {
      return SmallVector<OpFoldResult>{b.getIndexAttr(size), b.getIndexAttr(m)};
    };
    SmallVector<OpFoldResult> strides(2, b.getIndexAttr(1));
    auto chunkBody = [&](ImplicitLocOpBuilder &ib, OpFoldResult offset,
                         int64_t size) -> Value {
      // The output may be wider than the input (mixed precision).
      Value rowsIn = tensor::ExtractSliceOp::create(
          ib,
          RankedTensorType::get(
              {size, m}, cast<RankedTensorType>(x.getType()).getElementType()),
          x, offsetsAt(offset), sizesOf(size), strides);
      Value h = matmul(ib, rowsIn, op.getW1(), size, f);
      h = biasAndActivate(ib, h, op.getB1(), ib.getF32Type(), act);
      Value y = matmul(ib, h, op.getW2(), size, m);
      return biasAndActivate(ib, y, op.getB2(), elementType, nullptr);
    };

    Value out = emptyTensor(b, {rows, m}, elementType);
    int64_t full = rows / chunk, rest = rows % chunk;
    if (full > 0) {
      // Chunks are independent: each thread takes whole chunks, so one
      // chunk's intermediate stays in its core's cache and the FFN shares
      // the cores in one parallel loop rather than four per chunk.
      auto loop =
          scf::ForallOp::create(b, ArrayRef<OpFoldResult>{b.getIndexAttr(full)},
                                ValueRange{out}, std::nullopt);
      ImplicitLocOpBuilder ib(op.getLoc(), loop.getTerminator());
      Value offset = arith::MulIOp::create(ib, loop.getInductionVars()[0],
                                           indexConst(ib, chunk));
      Value y = chunkBody(ib, offset, chunk);
      ib.setInsertionPointToStart(loop.getTerminator().getBody());
      tensor::ParallelInsertSliceOp::create(ib, y, loop.getRegionIterArgs()[0],
                                            offsetsAt(offset), sizesOf(chunk),
                                            strides);
      out = loop.getResult(0);
    }
    if (rest > 0) {
      OpFoldResult offset = b.getIndexAttr(full * chunk);
      out = tensor::InsertSliceOp::create(b, chunkBody(b, offset, rest), out,
                                          offsetsAt(offset), sizesOf(rest),
                                          strides);
    }
    rewriter.replaceOp(op, expandRows(b, out, type));
    return success();
  }
};

} // namespace

void reformer::populateLayerNormAndDenseLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerLayerNorm, LowerDense, LowerChunkedFfn>(
      patterns.getContext());
}
