//===- LshSteps.cpp - rotations, hashing, sort, unsort, combine → linalg --===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kMix1 = 0xBF58476D1CE4E5B9ull;
constexpr uint64_t kMix2 = 0x94D049BB133111EBull;

uint64_t mixConstant(uint64_t z) {
  z = (z ^ (z >> 30)) * kMix1;
  z = (z ^ (z >> 27)) * kMix2;
  return z ^ (z >> 31);
}

Value i64Const(ImplicitLocOpBuilder &b, uint64_t v) {
  return arith::ConstantOp::create(
      b, b.getI64IntegerAttr(static_cast<int64_t>(v)));
}

/// The SplitMix64 finalizer on an i64 value (arithmetic wraps mod 2^64).
Value mix(ImplicitLocOpBuilder &b, Value z) {
  auto xorShift = [&](Value v, uint64_t s) {
    return arith::XOrIOp::create(b, v,
                                 arith::ShRUIOp::create(b, v, i64Const(b, s)));
  };
  z = arith::MulIOp::create(b, xorShift(z, 30), i64Const(b, kMix1));
  z = arith::MulIOp::create(b, xorShift(z, 27), i64Const(b, kMix2));
  return xorShift(z, 31);
}

/// docs/lsh-rotations.md, element by element: no state crosses elements.
struct LowerLshRotations : OpRewritePattern<LshRotationsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LshRotationsOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs a static shape");
    ArrayRef<int64_t> s = type.getShape();
    uint64_t key = mixConstant(static_cast<uint64_t>(op.getSeed()));
    Type elementType = type.getElementType();
    Value result = generic(
        b, ValueRange{}, emptyTensor(b, s, elementType),
        {identity(b.getContext(), 4)}, 4, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange) {
          SmallVector<Value> iv = loopIndices(ib, 4);
          Value n = iv[0];
          for (int d = 1; d < 4; ++d)
            n = arith::AddIOp::create(
                ib, arith::MulIOp::create(ib, n, indexConst(ib, s[d])), iv[d]);
          n = arith::IndexCastOp::create(ib, ib.getI64Type(), n);
          auto bits = [&](Value counter) {
            Value plusOne = arith::AddIOp::create(ib, counter, i64Const(ib, 1));
            return mix(ib, arith::AddIOp::create(
                               ib, i64Const(ib, key),
                               arith::MulIOp::create(ib, plusOne,
                                                     i64Const(ib, kGamma))));
          };
          Value c1 = arith::MulIOp::create(ib, n, i64Const(ib, 2));
          Value c2 = arith::AddIOp::create(ib, c1, i64Const(ib, 1));
          auto unit = [&](Value bitsValue, uint64_t offset) {
            Value top = arith::ShRUIOp::create(ib, bitsValue, i64Const(ib, 11));
            top = arith::AddIOp::create(ib, top, i64Const(ib, offset));
            Value f = arith::UIToFPOp::create(ib, ib.getF64Type(), top);
            return arith::MulFOp::create(
                ib, f,
                arith::ConstantOp::create(ib, ib.getF64FloatAttr(0x1.0p-53)));
          };
          Value u1 = unit(bits(c1), 1), u2 = unit(bits(c2), 0);
          Value radius = math::SqrtOp::create(
              ib, arith::MulFOp::create(
                      ib, math::LogOp::create(ib, u1),
                      arith::ConstantOp::create(ib, ib.getF64FloatAttr(-2.0))));
          Value angle = arith::MulFOp::create(
              ib, u2,
              arith::ConstantOp::create(ib, ib.getF64FloatAttr(2.0 * M_PI)));
          Value z =
              arith::MulFOp::create(ib, radius, math::CosOp::create(ib, angle));
          linalg::YieldOp::create(
              ib, ValueRange{arith::TruncFOp::create(ib, elementType, z)});
        })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Rotates every position (one contraction over D), then takes the argmax
/// of `[xR ; −xR]` per bucket factor, lowest index on ties.
struct LowerLshHash : OpRewritePattern<LshHashOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LshHashOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto qkType = cast<RankedTensorType>(op.getQk().getType());
    auto rotType = cast<RankedTensorType>(op.getRotations().getType());
    auto outType = cast<RankedTensorType>(op.getType());
    if (!qkType.hasStaticShape() || !rotType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    int64_t bsz = qkType.getDimSize(0), h = qkType.getDimSize(1),
            l = qkType.getDimSize(2), r = rotType.getDimSize(2),
            k = rotType.getDimSize(3);

    // Per (batch, head): rotated[b, h] = x[b, h] · R[h] as one [L, D] ×
    // [D, R·K] matmul (a register-blocked kernel after bufferization).
    Type f32 = b.getF32Type();
    Value xF32 = scaledF32Tensor(b, op.getQk());
    Value rotF32 = scaledF32Tensor(b, op.getRotations());
    int64_t dim = qkType.getDimSize(3);
    Value rotFlat = tensor::CollapseShapeOp::create(
        b, rotF32, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
    auto loop = scf::ForOp::create(
        b, indexConst(b, 0), indexConst(b, bsz * h), indexConst(b, 1),
        ValueRange{emptyTensor(b, {bsz, h, l, r * k}, f32)},
        [&](OpBuilder &nested, Location loc, Value bh, ValueRange iter) {
          ImplicitLocOpBuilder ib(loc, nested);
          Value bi = arith::DivUIOp::create(ib, bh, indexConst(ib, h));
          Value hi = arith::RemUIOp::create(ib, bh, indexConst(ib, h));
          SmallVector<OpFoldResult> one(4, ib.getIndexAttr(1));
          Value x = tensor::ExtractSliceOp::create(
              ib, RankedTensorType::get({l, dim}, f32), xF32,
              ArrayRef<OpFoldResult>{bi, hi, ib.getIndexAttr(0),
                                     ib.getIndexAttr(0)},
              ArrayRef<OpFoldResult>{ib.getIndexAttr(1), ib.getIndexAttr(1),
                                     ib.getIndexAttr(l), ib.getIndexAttr(dim)},
              one);
          Value rot = tensor::ExtractSliceOp::create(
              ib, RankedTensorType::get({dim, r * k}, f32), rotFlat,
              ArrayRef<OpFoldResult>{hi, ib.getIndexAttr(0),
                                     ib.getIndexAttr(0)},
              ArrayRef<OpFoldResult>{ib.getIndexAttr(1), ib.getIndexAttr(dim),
                                     ib.getIndexAttr(r * k)},
              SmallVector<OpFoldResult>(3, ib.getIndexAttr(1)));
          Value acc = filledTensor(ib, {l, r * k}, 0.0);
          Value prod =
              linalg::MatmulOp::create(ib, TypeRange{acc.getType()},
                                       ValueRange{x, rot}, ValueRange{acc})
                  .getResult(0);
          Value updated = tensor::InsertSliceOp::create(
              ib, prod, iter[0],
              ArrayRef<OpFoldResult>{bi, hi, ib.getIndexAttr(0),
                                     ib.getIndexAttr(0)},
              ArrayRef<OpFoldResult>{ib.getIndexAttr(1), ib.getIndexAttr(1),
                                     ib.getIndexAttr(l),
                                     ib.getIndexAttr(r * k)},
              one);
          scf::YieldOp::create(ib, ValueRange{updated});
        });
    Value rotated = loop.getResult(0); // [B, H, L, R·K]

    // argmax over [v ; −v] in one pass: the first maximum and the first
    // minimum of v; −v's block comes second, so it wins only when strictly
    // larger (the lowest index wins ties, as in trax).
    ArrayRef<int64_t> factors = op.getNBuckets();
    Value buckets = generic(
        b, ValueRange{}, emptyTensor(b, outType.getShape(), b.getI32Type()),
        {identity(ctx, 4)}, 4, {}, [&](ImplicitLocOpBuilder &ib, ValueRange) {
          SmallVector<Value> iv = loopIndices(ib, 4);
          Value bucket = indexConst(ib, 0);
          int64_t column = 0, multiplier = 1;
          Value rowStart = arith::MulIOp::create(ib, iv[2], indexConst(ib, k));
          for (int64_t f : factors) {
            int64_t half = f / 2;
            auto at = [&](ImplicitLocOpBuilder &lb, Value j) -> Value {
              Value col = arith::AddIOp::create(
                  lb, rowStart,
                  arith::AddIOp::create(lb, j, indexConst(lb, column)));
              return tensor::ExtractOp::create(
                  lb, rotated, ValueRange{iv[0], iv[1], iv[3], col});
            };
            Value first = at(ib, indexConst(ib, 0));
            Value init[] = {first, indexConst(ib, 0), first, indexConst(ib, 0)};
            auto loop = scf::ForOp::create(
                ib, indexConst(ib, 1), indexConst(ib, half), indexConst(ib, 1),
                ValueRange(init),
                [&](OpBuilder &nested, Location loc, Value j, ValueRange acc) {
                  ImplicitLocOpBuilder lb(loc, nested);
                  Value v = at(lb, j);
                  Value larger = arith::CmpFOp::create(
                      lb, arith::CmpFPredicate::OGT, v, acc[0]);
                  Value smaller = arith::CmpFOp::create(
                      lb, arith::CmpFPredicate::OLT, v, acc[2]);
                  scf::YieldOp::create(
                      lb, ValueRange{
                              arith::SelectOp::create(lb, larger, v, acc[0]),
                              arith::SelectOp::create(lb, larger, j, acc[1]),
                              arith::SelectOp::create(lb, smaller, v, acc[2]),
                              arith::SelectOp::create(lb, smaller, j, acc[3])});
                });
            Value negMin = arith::NegFOp::create(ib, loop.getResult(2));
            Value useMax = arith::CmpFOp::create(ib, arith::CmpFPredicate::OGE,
                                                 loop.getResult(0), negMin);
            Value h = arith::SelectOp::create(
                ib, useMax, loop.getResult(1),
                arith::AddIOp::create(ib, loop.getResult(3),
                                      indexConst(ib, half)));
            bucket = arith::AddIOp::create(
                ib, bucket,
                arith::MulIOp::create(ib, h, indexConst(ib, multiplier)));
            column += half;
            multiplier *= f;
          }
          linalg::YieldOp::create(ib, ValueRange{arith::IndexCastOp::create(
                                          ib, ib.getI32Type(), bucket)});
        })[0];
    rewriter.replaceOp(op, buckets);
    return success();
  }
};

/// A stable counting sort per (b, h, round): histogram, exclusive scan,
/// scatter in position order.
struct LowerBucketSort : OpRewritePattern<BucketSortOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BucketSortOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getBuckets().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> s = type.getShape();
    int64_t numBuckets = op.getNumBuckets();
    Value buckets = toBuffer(b, op.getBuckets());
    auto indexType = cast<RankedTensorType>(op.getPerm().getType());
    Value perm = allocBuffer(b, indexType);
    Value inverse = allocBuffer(b, indexType);
    Value zero = indexConst(b, 0), one = indexConst(b, 1);
    Value len = indexConst(b, s[3]), nb = indexConst(b, numBuckets);

    scf::ParallelOp::create(
        b, ValueRange{zero, zero, zero},
        ValueRange{indexConst(b, s[0]), indexConst(b, s[1]),
                   indexConst(b, s[2])},
        ValueRange{one, one, one},
        [&](OpBuilder &nested, Location loc, ValueRange ivs) {
          ImplicitLocOpBuilder pb(loc, nested);
          // Heap, not stack: a parallel loop run serially has no allocation
          // scope per iteration.
          Value counts = memref::AllocOp::create(
              pb, MemRefType::get({numBuckets}, pb.getIndexType()));
          auto bucketAt = [&](ImplicitLocOpBuilder &ib, Value i) {
            Value raw = memref::LoadOp::create(
                ib, buckets, ValueRange{ivs[0], ivs[1], ivs[2], i});
            Value idx = arith::IndexCastOp::create(ib, ib.getIndexType(), raw);
            // Out-of-range buckets are clamped rather than written out of
            // bounds.
            idx = arith::MaxSIOp::create(ib, idx, indexConst(ib, 0));
            return arith::MinSIOp::create(ib, idx,
                                          indexConst(ib, numBuckets - 1));
          };
          forLoop(pb, zero, nb, 1, [&](ImplicitLocOpBuilder &ib, Value k) {
            memref::StoreOp::create(ib, indexConst(ib, 0), counts, k);
          });
          forLoop(pb, zero, len, 1, [&](ImplicitLocOpBuilder &ib, Value i) {
            Value k = bucketAt(ib, i);
            Value c = memref::LoadOp::create(ib, counts, k);
            memref::StoreOp::create(
                ib, arith::AddIOp::create(ib, c, indexConst(ib, 1)), counts, k);
          });
          scf::ForOp::create(
              pb, zero, nb, one, ValueRange{zero},
              [&](OpBuilder &n2, Location l2, Value k, ValueRange acc) {
                ImplicitLocOpBuilder ib(l2, n2);
                Value c = memref::LoadOp::create(ib, counts, k);
                memref::StoreOp::create(ib, acc[0], counts, k);
                scf::YieldOp::create(
                    ib, ValueRange{arith::AddIOp::create(ib, acc[0], c)});
              });
          forLoop(pb, zero, len, 1, [&](ImplicitLocOpBuilder &ib, Value i) {
            Value k = bucketAt(ib, i);
            Value slot = memref::LoadOp::create(ib, counts, k);
            memref::StoreOp::create(
                ib, arith::AddIOp::create(ib, slot, indexConst(ib, 1)), counts,
                k);
            Value i32 = arith::IndexCastOp::create(ib, ib.getI32Type(), i);
            Value slot32 =
                arith::IndexCastOp::create(ib, ib.getI32Type(), slot);
            memref::StoreOp::create(ib, i32, perm,
                                    ValueRange{ivs[0], ivs[1], ivs[2], slot});
            memref::StoreOp::create(ib, slot32, inverse,
                                    ValueRange{ivs[0], ivs[1], ivs[2], i});
          });
          scf::ReduceOp::create(pb);
        });
    rewriter.replaceOp(op, {toTensor(b, perm), toTensor(b, inverse)});
    return success();
  }
};

/// A gather along the sequence dimension through the inverse permutation.
struct LowerUnsort : OpRewritePattern<UnsortOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(UnsortOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getType());
    unsigned rank = type.getRank();
    Value input = op.getInput();
    Value result =
        generic(b, op.getInverse(),
                emptyTensor(b, type.getShape(), type.getElementType()),
                {projection(ctx, rank, {0, 1, 2, 3}), identity(ctx, rank)},
                rank, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  SmallVector<Value> iv = loopIndices(ib, rank);
                  iv[3] =
                      arith::IndexCastOp::create(ib, ib.getIndexType(), a[0]);
                  linalg::YieldOp::create(
                      ib, ValueRange{tensor::ExtractOp::create(ib, input, iv)});
                })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Softmax over rounds of the log-sum-exps, by max-subtraction and division
/// so the weights sum to one even where every round's lse is near −1e5
/// (tokens that could attend only to themselves).
struct LowerCombineRounds : OpRewritePattern<CombineRoundsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CombineRoundsOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto outType = cast<RankedTensorType>(op.getOut().getType());
    if (!outType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> s = outType.getShape(); // [B, H, R, L, D]
    SmallVector<int64_t> rowShape = {s[0], s[1], s[3]};
    // Loops (b, h, i, r): lse[b, h, r, i].
    AffineMap lse4 = projection(ctx, 4, {0, 1, 3, 2});
    AffineMap row4 = projection(ctx, 4, {0, 1, 2});
    Value max = generic(
        b, op.getLse(),
        filledTensor(b, rowShape, -std::numeric_limits<double>::infinity()),
        {lse4, row4}, 4, {3}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          linalg::YieldOp::create(
              ib, ValueRange{arith::MaximumFOp::create(ib, a[0], a[1])});
        })[0];
    Value den =
        generic(b, ValueRange{op.getLse(), max}, filledTensor(b, rowShape, 0.0),
                {lse4, row4, row4}, 4, {3},
                [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  Value e = math::ExpOp::create(
                      ib, arith::SubFOp::create(ib, a[0], a[1]));
                  linalg::YieldOp::create(
                      ib, ValueRange{arith::AddFOp::create(ib, a[2], e)});
                })[0];
    // The round weights once per (b, h, r, i), not once per element of D.
    Value weights =
        generic(b, ValueRange{op.getLse(), max, den},
                emptyTensor(b, {s[0], s[1], s[2], s[3]}, b.getF32Type()),
                {identity(ctx, 4), projection(ctx, 4, {0, 1, 3}),
                 projection(ctx, 4, {0, 1, 3}), identity(ctx, 4)},
                4, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  Value e = math::ExpOp::create(
                      ib, arith::SubFOp::create(ib, a[0], a[1]));
                  linalg::YieldOp::create(
                      ib, ValueRange{arith::DivFOp::create(ib, e, a[2])});
                })[0];
    // Loops (b, h, i, r, d): d innermost, contiguous in both operands.
    Type elementType = outType.getElementType();
    Value acc = generic(
        b, ValueRange{op.getOut(), weights},
        filledTensor(b, {s[0], s[1], s[3], s[4]}, 0.0),
        {projection(ctx, 5, {0, 1, 3, 2, 4}), projection(ctx, 5, {0, 1, 3, 2}),
         projection(ctx, 5, {0, 1, 2, 4})},
        5, {3}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value term = arith::MulFOp::create(ib, a[1], toF32(ib, a[0]));
          linalg::YieldOp::create(
              ib, ValueRange{arith::AddFOp::create(ib, a[2], term)});
        })[0];
    if (!elementType.isF32())
      acc =
          generic(b, acc, emptyTensor(b, {s[0], s[1], s[3], s[4]}, elementType),
                  {identity(ctx, 4), identity(ctx, 4)}, 4, {},
                  [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                    linalg::YieldOp::create(
                        ib, ValueRange{fromF32(ib, a[0], elementType)});
                  })[0];
    rewriter.replaceOp(op, acc);
    return success();
  }
};

} // namespace

void reformer::populateLshStepLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerLshRotations, LowerLshHash, LowerBucketSort, LowerUnsort,
               LowerCombineRounds>(patterns.getContext());
}
