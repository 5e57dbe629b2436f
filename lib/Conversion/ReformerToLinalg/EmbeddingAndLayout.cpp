//===- EmbeddingAndLayout.cpp - embeddings, masks, head layout → linalg ---===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

/// A gather: every output element reads `table[tokens[b, i], m]`.
struct LowerEmbedding : OpRewritePattern<EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    MLIRContext *ctx = b.getContext();
    Value table = op.getTable();
    Value result = generic(
        b, op.getTokens(),
        emptyTensor(b, type.getShape(), type.getElementType()),
        {projection(ctx, 3, {0, 1}), identity(ctx, 3)}, 3, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value row = arith::IndexCastOp::create(ib, ib.getIndexType(), a[0]);
          Value col = linalg::IndexOp::create(ib, 2);
          Value v = tensor::ExtractOp::create(ib, table, ValueRange{row, col});
          linalg::YieldOp::create(ib, ValueRange{v});
        })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Builds the `[L, M]` position table one weight (column block) at a time,
/// then adds it to every batch row.
struct LowerAxialPosEmbedding : OpRewritePattern<AxialPosEmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AxialPosEmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    int64_t len = type.getDimSize(1), width = type.getDimSize(2);
    Type elementType = type.getElementType();

    SmallVector<int64_t> axes;
    for (Value w : op.getWeights())
      axes.push_back(cast<RankedTensorType>(w.getType()).getDimSize(0));
    Value table = emptyTensor(b, {len, width}, elementType);
    int64_t column = 0;
    for (auto [t, weight] : llvm::enumerate(op.getWeights())) {
      int64_t stride = 1;
      for (size_t s = t + 1; s < axes.size(); ++s)
        stride *= axes[s];
      int64_t axis = axes[t];
      int64_t d = cast<RankedTensorType>(weight.getType()).getDimSize(1);
      Value block = generic(
          b, ValueRange{}, emptyTensor(b, {len, d}, elementType),
          {identity(ctx, 2)}, 2, {}, [&](ImplicitLocOpBuilder &ib, ValueRange) {
            SmallVector<Value> iv = loopIndices(ib, 2);
            // p_t = (p / stride_t) mod n_t.
            Value p = arith::RemUIOp::create(
                ib, arith::DivUIOp::create(ib, iv[0], indexConst(ib, stride)),
                indexConst(ib, axis));
            Value v =
                tensor::ExtractOp::create(ib, weight, ValueRange{p, iv[1]});
            linalg::YieldOp::create(ib, ValueRange{v});
          })[0];
      SmallVector<OpFoldResult> offsets = {b.getIndexAttr(0),
                                           b.getIndexAttr(column)};
      SmallVector<OpFoldResult> sizes = {b.getIndexAttr(len),
                                         b.getIndexAttr(d)};
      SmallVector<OpFoldResult> strides(2, b.getIndexAttr(1));
      table = tensor::InsertSliceOp::create(b, block, table, offsets, sizes,
                                            strides);
      column += d;
    }
    Value result = generic(
        b, ValueRange{op.getInput(), table},
        emptyTensor(b, type.getShape(), elementType),
        {identity(ctx, 3), projection(ctx, 3, {1, 2}), identity(ctx, 3)}, 3, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value sum =
              arith::AddFOp::create(ib, toF32(ib, a[0]), toF32(ib, a[1]));
          linalg::YieldOp::create(ib,
                                  ValueRange{fromF32(ib, sum, elementType)});
        })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct LowerLengthMask : OpRewritePattern<LengthMaskOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LengthMaskOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    int64_t length = op.getLength();
    Value result =
        generic(b, ValueRange{}, emptyTensor(b, type.getShape(), b.getI1Type()),
                {identity(b.getContext(), 2)}, 2, {},
                [&](ImplicitLocOpBuilder &ib, ValueRange) {
                  Value i = linalg::IndexOp::create(ib, 1);
                  Value keep = arith::CmpIOp::create(
                      ib, arith::CmpIPredicate::ult, i, indexConst(ib, length));
                  linalg::YieldOp::create(ib, ValueRange{keep});
                })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// `[B, L, H·D]` → expand → `[B, L, H, D]` → transpose → `[B, H, L, D]`.
struct LowerSplitHeads : OpRewritePattern<SplitHeadsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SplitHeadsOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    ArrayRef<int64_t> s = type.getShape();
    auto expandedType =
        RankedTensorType::get({s[0], s[2], s[1], s[3]}, type.getElementType());
    Value expanded = tensor::ExpandShapeOp::create(
        b, expandedType, op.getInput(),
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
    Value result = linalg::TransposeOp::create(
                       b, expanded, emptyTensor(b, s, type.getElementType()),
                       ArrayRef<int64_t>{0, 2, 1, 3})
                       .getResult()[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct LowerMergeHeads : OpRewritePattern<MergeHeadsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MergeHeadsOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto inType = cast<RankedTensorType>(op.getInput().getType());
    ArrayRef<int64_t> s = inType.getShape();
    Value transposed =
        linalg::TransposeOp::create(
            b, op.getInput(),
            emptyTensor(b, {s[0], s[2], s[1], s[3]}, inType.getElementType()),
            ArrayRef<int64_t>{0, 2, 1, 3})
            .getResult()[0];
    Value result = tensor::CollapseShapeOp::create(
        b, op.getType(), transposed,
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void reformer::populateEmbeddingAndLayoutLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerEmbedding, LowerAxialPosEmbedding, LowerLengthMask,
               LowerSplitHeads, LowerMergeHeads>(patterns.getContext());
}
