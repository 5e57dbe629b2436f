//===- ReformerCanonicalization.cpp - Canonicalization patterns -----------===//

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// A mask made by `length_mask` that keeps every position masks nothing:
/// drop it so the lowering does not read it.
template <typename AttentionOp>
struct DropAllTrueMask : OpRewritePattern<AttentionOp> {
  using OpRewritePattern<AttentionOp>::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    Value mask = op.getMask();
    if (!mask)
      return failure();
    auto lengthMask = mask.template getDefiningOp<LengthMaskOp>();
    if (!lengthMask)
      return failure();
    int64_t seqLen = cast<ShapedType>(mask.getType()).getDimSize(1);
    if (ShapedType::isDynamic(seqLen) ||
        static_cast<int64_t>(lengthMask.getLength()) != seqLen)
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.getMaskMutable().clear(); });
    return success();
  }
};

/// Inference does not read the per-round log-sum-exp and buckets: an
/// attention whose training results are unused need not produce them.
struct DropUnusedTrainingResults : OpRewritePattern<LshAttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LshAttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getLse() || !op.getLse().use_empty() ||
        !op.getBuckets().use_empty())
      return failure();
    auto plain = LshAttentionOp::create(
        rewriter, op.getLoc(), op.getOut().getType(),
        /*training_results=*/TypeRange(), op.getQk(), op.getV(),
        op.getRotations(), op.getMask(), op.getNHashes(), op.getNBuckets(),
        op.getChunkLen(), op.getChunksBefore(), op.getChunksAfter(),
        op.getCausal(), op.getDuplicateCorrection(), op.getSeedAttr());
    rewriter.replaceOp(op, {plain.getOut(), Value(), Value()});
    return success();
  }
};

/// With a single hash round the combine is the identity on that round.
struct CombineSingleRound : OpRewritePattern<CombineRoundsOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CombineRoundsOp op,
                                PatternRewriter &rewriter) const override {
    auto outType = cast<RankedTensorType>(op.getOut().getType());
    if (outType.getDimSize(2) != 1)
      return failure();
    SmallVector<ReassociationIndices> reassociation = {{0}, {1}, {2, 3}, {4}};
    rewriter.replaceOpWithNewOp<tensor::CollapseShapeOp>(
        op, op.getResult().getType(), op.getOut(), reassociation);
    return success();
  }
};

/// `unsort(sorted_chunk_attention(perm).out, inverse)` with `perm` and
/// `inverse` from one bucket_sort: write the results in sequence order in
/// the first place and drop the unsorts (one gather pass per result less).
struct FoldUnsortIntoAttention : OpRewritePattern<SortedChunkAttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SortedChunkAttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getSequenceOrder())
      return failure();
    auto sort = op.getPerm().getDefiningOp<BucketSortOp>();
    if (!sort || op.getPerm() != sort.getPerm())
      return failure();
    SmallVector<UnsortOp> unsorts;
    for (Value result : op->getResults())
      for (Operation *user : result.getUsers()) {
        auto unsort = dyn_cast<UnsortOp>(user);
        if (!unsort || unsort.getInverse() != sort.getInverse() ||
            unsort.getInput() != result)
          return failure();
        unsorts.push_back(unsort);
      }
    if (unsorts.empty())
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.setSequenceOrder(true); });
    for (UnsortOp unsort : unsorts)
      rewriter.replaceOp(unsort, unsort.getInput());
    return success();
  }
};

} // namespace

void SortedChunkAttentionOp::getCanonicalizationPatterns(
    RewritePatternSet &results, MLIRContext *context) {
  results.add<FoldUnsortIntoAttention>(context);
}

void LshAttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                                 MLIRContext *context) {
  results.add<DropAllTrueMask<LshAttentionOp>, DropUnusedTrainingResults>(
      context);
}

void LocalAttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                                   MLIRContext *context) {
  results.add<DropAllTrueMask<LocalAttentionOp>>(context);
}

void CombineRoundsOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                                  MLIRContext *context) {
  results.add<CombineSingleRound>(context);
}
