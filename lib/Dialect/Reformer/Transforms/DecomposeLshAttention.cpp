//===- DecomposeLshAttention.cpp - lsh_attention → its steps --------------===//

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFDECOMPOSELSHATTENTION
#include "reformer/Dialect/Reformer/Transforms/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

namespace {

struct DecomposeLshAttentionPattern : OpRewritePattern<LshAttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LshAttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto qkType = cast<RankedTensorType>(op.getQk().getType());
    if (!qkType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    Location loc = op.getLoc();
    ArrayRef<int64_t> shape = qkType.getShape();
    int64_t b = shape[0], h = shape[1], l = shape[2], d = shape[3];
    int64_t r = op.getNHashes();

    Value rotations = op.getRotations();
    if (!rotations) {
      // f32 whatever the activations' type: the hash computes in f32, and
      // 16-bit rotations would move more positions across bucket borders.
      auto rotType = RankedTensorType::get({h, d, r, op.getRotationWidth()},
                                           rewriter.getF32Type());
      rotations =
          LshRotationsOp::create(rewriter, loc, rotType, /*seed_value=*/Value(),
                                 op.getSeedAttr())
              .getResult();
    }

    auto indexType = RankedTensorType::get({b, h, r, l}, rewriter.getI32Type());
    Value buckets = LshHashOp::create(rewriter, loc, indexType, op.getQk(),
                                      rotations, op.getNBucketsAttr())
                        .getBuckets();
    auto [out, lse] = buildLshAttentionFromBuckets(
        rewriter, op, op.getQk(), op.getV(), op.getMask(), buckets);
    rewriter.replaceOp(op, {out, op.getLse() ? lse : Value(),
                            op.getBuckets() ? buckets : Value()});
    return success();
  }
};

struct RfDecomposeLshAttentionPass
    : reformer::impl::RfDecomposeLshAttentionBase<RfDecomposeLshAttentionPass> {
  void runOnOperation() override {
    // Dynamic shapes are rejected up front so no op is left half-lowered.
    WalkResult dynamic = getOperation()->walk([](LshAttentionOp op) {
      if (cast<RankedTensorType>(op.getQk().getType()).hasStaticShape())
        return WalkResult::advance();
      op.emitOpError("cannot be decomposed: rf-decompose-lsh-attention needs "
                     "static shapes");
      return WalkResult::interrupt();
    });
    if (dynamic.wasInterrupted())
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    populateDecomposeLshAttentionPatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace

std::pair<Value, Value> mlir::reformer::buildLshAttentionFromBuckets(
    OpBuilder &builder, LshAttentionOp op, Value qk, Value v, Value mask,
    Value buckets) {
  Location loc = op.getLoc();
  auto qkType = cast<RankedTensorType>(qk.getType());
  ArrayRef<int64_t> shape = qkType.getShape();
  int64_t b = shape[0], h = shape[1], l = shape[2], d = shape[3];
  int64_t r = op.getNHashes();
  auto indexType = cast<RankedTensorType>(buckets.getType());
  auto sort = BucketSortOp::create(builder, loc, indexType, indexType, buckets,
                                   op.getNumBucketsTotal());
  auto outType =
      RankedTensorType::get({b, h, r, l, d}, qkType.getElementType());
  auto lseType = RankedTensorType::get({b, h, r, l}, builder.getF32Type());
  Value inverse = op.getDuplicateCorrection() ? sort.getInverse() : Value();
  auto attention = SortedChunkAttentionOp::create(
      builder, loc, outType, lseType, qk, v, sort.getPerm(), inverse, mask,
      op.getChunkLen(), op.getChunksBefore(), op.getChunksAfter(),
      op.getCausal(), op.getDuplicateCorrection());
  Value rounds = UnsortOp::create(builder, loc, outType, attention.getOut(),
                                  sort.getInverse());
  Value lse = UnsortOp::create(builder, loc, lseType, attention.getLse(),
                               sort.getInverse());
  Value out =
      CombineRoundsOp::create(builder, loc, op.getOut().getType(), rounds, lse);
  return {out, lse};
}

void mlir::reformer::populateDecomposeLshAttentionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DecomposeLshAttentionPattern>(patterns.getContext());
}
