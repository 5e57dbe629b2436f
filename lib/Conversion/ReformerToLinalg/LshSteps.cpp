//===- LshSteps.cpp - rotations, hashing, sort, unsort, combine → linalg --===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

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
    // The stream's key: folded when the seed is an attribute.
    Value key =
        op.getSeed()
            ? i64Const(b, mixConstant(static_cast<uint64_t>(*op.getSeed())))
            : mix(b, tensor::ExtractOp::create(b, op.getSeedValue(),
                                               ValueRange{}));
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
                               ib, key,
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
              // Narrow types through f32: there is no f64 → bf16
              // instruction or integer expansion (rf-expand-bf16 starts
              // from f32).
              ib, ValueRange{elementType.isF64()
                                 ? z
                                 : fromF32(ib,
                                           arith::TruncFOp::create(
                                               ib, ib.getF32Type(), z),
                                           elementType)});
        })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// The first maximum and first minimum of a row and their indices.
struct Extremes {
  Value maxValue, maxIndex, minValue, minIndex;
};

constexpr int64_t kArgmaxLanes = 16;
/// Rows per hashing block: their rotations (R·K floats each) stay in L2.
constexpr int64_t kHashRowsPerBlock = 128;

/// One pass over elements (or vectors of elements) `step` apart from 0 to
/// `n`, keeping the first maximum and first minimum and their indices
/// (strict comparisons). `load(j)` reads the values at j, `indexOf(j)`
/// their indices.
Extremes
extremesLoop(ImplicitLocOpBuilder &b, int64_t n, int64_t step,
             function_ref<Value(ImplicitLocOpBuilder &, Value)> load,
             function_ref<Value(ImplicitLocOpBuilder &, Value)> indexOf) {
  Value zero = indexConst(b, 0);
  Value first = load(b, zero), firstIndex = indexOf(b, zero);
  Value init[] = {first, firstIndex, first, firstIndex};
  auto loop = scf::ForOp::create(
      b, indexConst(b, step), indexConst(b, n), indexConst(b, step),
      ValueRange(init),
      [&](OpBuilder &nested, Location loc, Value j, ValueRange acc) {
        ImplicitLocOpBuilder lb(loc, nested);
        Value v = load(lb, j), index = indexOf(lb, j);
        Value larger =
            arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT, v, acc[0]);
        Value smaller =
            arith::CmpFOp::create(lb, arith::CmpFPredicate::OLT, v, acc[2]);
        scf::YieldOp::create(
            lb,
            ValueRange{arith::SelectOp::create(lb, larger, v, acc[0]),
                       arith::SelectOp::create(lb, larger, index, acc[1]),
                       arith::SelectOp::create(lb, smaller, v, acc[2]),
                       arith::SelectOp::create(lb, smaller, index, acc[3])});
      });
  return {loop.getResult(0), loop.getResult(1), loop.getResult(2),
          loop.getResult(3)};
}

/// One scalar pass over `at(0 .. n)`.
Extremes scalarExtremes(ImplicitLocOpBuilder &b,
                        function_ref<Value(ImplicitLocOpBuilder &, Value)> at,
                        int64_t n) {
  auto itself = [](ImplicitLocOpBuilder &, Value j) { return j; };
  return extremesLoop(b, n, 1, at, itself);
}

/// The same, 16 lanes at a time: each lane keeps its own first extreme,
/// then the lanes holding the overall extreme give their lowest index, so
/// ties still go to the lowest index.
Extremes vectorExtremes(ImplicitLocOpBuilder &b, Value rotated, Value row,
                        Value start, int64_t n) {
  auto vf = VectorType::get({kArgmaxLanes}, b.getF32Type());
  auto vi = VectorType::get({kArgmaxLanes}, b.getI32Type());
  auto load = [&](ImplicitLocOpBuilder &lb, Value j) -> Value {
    return vector::LoadOp::create(
        lb, vf, rotated, ValueRange{row, arith::AddIOp::create(lb, start, j)});
  };
  SmallVector<int32_t> laneIds;
  for (int64_t i = 0; i < kArgmaxLanes; ++i)
    laneIds.push_back(i);
  Value lanes = arith::ConstantOp::create(
      b, DenseIntElementsAttr::get(vi, ArrayRef<int32_t>(laneIds)));
  auto indicesAt = [&](ImplicitLocOpBuilder &lb, Value j) -> Value {
    return arith::AddIOp::create(
        lb, lanes,
        vector::BroadcastOp::create(
            lb, vi, arith::IndexCastOp::create(lb, lb.getI32Type(), j)));
  };
  Extremes lanewise = extremesLoop(b, n, kArgmaxLanes, load, indicesAt);
  auto reduce = [&](Value values, Value ids, vector::CombiningKind kind) {
    Value best = vector::ReductionOp::create(b, kind, values, maxFlags());
    Value isBest =
        arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, values,
                              vector::BroadcastOp::create(b, vf, best));
    Value candidates = arith::SelectOp::create(
        b, isBest, ids,
        vector::BroadcastOp::create(
            b, vi,
            arith::ConstantOp::create(
                b, b.getI32IntegerAttr(std::numeric_limits<int32_t>::max()))));
    Value index = vector::ReductionOp::create(b, vector::CombiningKind::MINSI,
                                              candidates);
    return std::make_pair(
        best,
        arith::IndexCastOp::create(b, b.getIndexType(), index).getResult());
  };
  auto [maxValue, maxIndex] = reduce(lanewise.maxValue, lanewise.maxIndex,
                                     vector::CombiningKind::MAXIMUMF);
  auto [minValue, minIndex] = reduce(lanewise.minValue, lanewise.minIndex,
                                     vector::CombiningKind::MINIMUMF);
  return {maxValue, maxIndex, minValue, minIndex};
}

/// The bucket of row `t` of `rotated` for one round whose K columns start
/// at `roundStart`: argmax over [v ; −v] per factor, in one pass (the first
/// maximum and the first minimum of v; −v's block comes second, so it wins
/// only when strictly larger: the lowest index wins ties, as in trax).
Value bucketOf(ImplicitLocOpBuilder &b, Value rotated, Value t,
               Value roundStart, ArrayRef<int64_t> factors) {
  Value bucket = indexConst(b, 0);
  int64_t column = 0, multiplier = 1;
  for (int64_t f : factors) {
    int64_t half = f / 2;
    Value start = arith::AddIOp::create(b, roundStart, indexConst(b, column));
    auto at = [&](ImplicitLocOpBuilder &lb, Value j) -> Value {
      return memref::LoadOp::create(
          lb, rotated, ValueRange{t, arith::AddIOp::create(lb, start, j)});
    };
    auto [maxValue, maxIndex, minValue, minIndex] =
        half % kArgmaxLanes == 0 ? vectorExtremes(b, rotated, t, start, half)
                                 : scalarExtremes(b, at, half);
    Value negMin = arith::NegFOp::create(b, minValue);
    Value useMax =
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, maxValue, negMin);
    Value index = arith::SelectOp::create(
        b, useMax, maxIndex,
        arith::AddIOp::create(b, minIndex, indexConst(b, half)));
    bucket = arith::AddIOp::create(
        b, bucket, arith::MulIOp::create(b, index, indexConst(b, multiplier)));
    column += half;
    multiplier *= f;
  }
  return arith::IndexCastOp::create(b, b.getI32Type(), bucket);
}

/// Rotates every position (one contraction over D), then takes the argmax
/// of `[xR ; −xR]` per bucket factor, lowest index on ties. A parallel loop
/// over (batch·head, block of rows): each block's rotations go to an
/// L2-sized scratch and are reduced to buckets at once, so the [L, R·K]
/// rotations of a whole head are never written out.
struct LowerLshHash : OpRewritePattern<LshHashOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LshHashOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto qkType = cast<RankedTensorType>(op.getQk().getType());
    auto rotType = cast<RankedTensorType>(op.getRotations().getType());
    auto outType = cast<RankedTensorType>(op.getType());
    if (!qkType.hasStaticShape() || !rotType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    int64_t bsz = qkType.getDimSize(0), h = qkType.getDimSize(1),
            l = qkType.getDimSize(2), dim = qkType.getDimSize(3),
            r = rotType.getDimSize(2), k = rotType.getDimSize(3);
    int64_t rows = 1;
    for (int64_t c = std::min<int64_t>(l, kHashRowsPerBlock); c >= 1; --c)
      if (l % c == 0) {
        rows = c;
        break;
      }

    Type f32 = b.getF32Type();
    // 16-bit projections are read as they are (the matmul widens them), not
    // copied to f32 first: that copy was as large as the projections.
    Value x = headsBuffer(b, op.getQk());
    Value rot =
        toBuffer(b, tensor::CollapseShapeOp::create(
                        b, scaledF32Tensor(b, op.getRotations()),
                        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}}));
    Value out = allocBuffer(b, outType);
    ArrayRef<int64_t> factors = op.getNBuckets();
    Value zero = indexConst(b, 0), one = indexConst(b, 1);
    scf::ParallelOp::create(
        b, ValueRange{zero, zero},
        ValueRange{indexConst(b, bsz * h), indexConst(b, l / rows)},
        ValueRange{one, one},
        [&](OpBuilder &nested, Location loc, ValueRange ivs) {
          ImplicitLocOpBuilder pb(loc, nested);
          Value bi = arith::DivUIOp::create(pb, ivs[0], indexConst(pb, h));
          Value hi = arith::RemUIOp::create(pb, ivs[0], indexConst(pb, h));
          Value row0 = arith::MulIOp::create(pb, ivs[1], indexConst(pb, rows));
          auto attr = [&](int64_t v) -> OpFoldResult {
            return pb.getIndexAttr(v);
          };
          auto xType =
              cast<MemRefType>(memref::SubViewOp::inferRankReducedResultType(
                  {rows, dim}, cast<MemRefType>(x.getType()),
                  ArrayRef<OpFoldResult>{bi, hi, row0, attr(0)},
                  ArrayRef<OpFoldResult>{attr(1), attr(1), attr(rows),
                                         attr(dim)},
                  ArrayRef<OpFoldResult>{attr(1), attr(1), attr(1), attr(1)}));
          Value xs = memref::SubViewOp::create(
              pb, xType, x, ArrayRef<OpFoldResult>{bi, hi, row0, attr(0)},
              ArrayRef<OpFoldResult>{attr(1), attr(1), attr(rows), attr(dim)},
              ArrayRef<OpFoldResult>{attr(1), attr(1), attr(1), attr(1)});
          auto rotSliceType =
              cast<MemRefType>(memref::SubViewOp::inferRankReducedResultType(
                  {dim, r * k}, cast<MemRefType>(rot.getType()),
                  ArrayRef<OpFoldResult>{hi, attr(0), attr(0)},
                  ArrayRef<OpFoldResult>{attr(1), attr(dim), attr(r * k)},
                  ArrayRef<OpFoldResult>{attr(1), attr(1), attr(1)}));
          Value rs = memref::SubViewOp::create(
              pb, rotSliceType, rot,
              ArrayRef<OpFoldResult>{hi, attr(0), attr(0)},
              ArrayRef<OpFoldResult>{attr(1), attr(dim), attr(r * k)},
              ArrayRef<OpFoldResult>{attr(1), attr(1), attr(1)});
          Value rotated =
              memref::AllocOp::create(pb, MemRefType::get({rows, r * k}, f32),
                                      pb.getI64IntegerAttr(64));
          linalg::FillOp::create(pb, ValueRange{f32Const(pb, 0.0)},
                                 ValueRange{rotated});
          linalg::MatmulOp::create(pb, ValueRange{xs, rs}, ValueRange{rotated});
          forLoop(pb, zero, indexConst(pb, rows), 1,
                  [&](ImplicitLocOpBuilder &tb, Value t) {
                    forLoop(
                        tb, zero, indexConst(tb, r), 1,
                        [&](ImplicitLocOpBuilder &ib, Value round) {
                          Value bucket =
                              bucketOf(ib, rotated, t,
                                       arith::MulIOp::create(ib, round,
                                                             indexConst(ib, k)),
                                       factors);
                          memref::StoreOp::create(
                              ib, bucket, out,
                              ValueRange{bi, hi, round,
                                         arith::AddIOp::create(ib, row0, t)});
                        });
                  });
          scf::ReduceOp::create(pb);
        });
    rewriter.replaceOp(op, toTensor(b, out));
    return success();
  }
};

/// The bucket at `at` as an index; out-of-range buckets are clamped rather
/// than written out of bounds.
Value clampedBucket(ImplicitLocOpBuilder &b, Value buckets, ValueRange at,
                    int64_t numBuckets) {
  Value raw = memref::LoadOp::create(b, buckets, at);
  Value idx = arith::IndexCastOp::create(b, b.getIndexType(), raw);
  idx = arith::MaxSIOp::create(b, idx, indexConst(b, 0));
  return arith::MinSIOp::create(b, idx, indexConst(b, numBuckets - 1));
}

/// `buffer[at] += 1`; returns the value before.
Value postIncrement(ImplicitLocOpBuilder &b, Value buffer, ValueRange at) {
  Value old = memref::LoadOp::create(b, buffer, at);
  memref::StoreOp::create(b, arith::AddIOp::create(b, old, indexConst(b, 1)),
                          buffer, at);
  return old;
}

/// Replaces the `count` index elements of `buffer` at `at(i)` with their
/// exclusive prefix sums, in order of i; returns the total.
Value exclusiveScan(ImplicitLocOpBuilder &b, Value buffer, int64_t count,
                    function_ref<SmallVector<Value>(Value)> at) {
  Value zero = indexConst(b, 0);
  auto loop = scf::ForOp::create(
      b, zero, indexConst(b, count), indexConst(b, 1), ValueRange{zero},
      [&](OpBuilder &nested, Location loc, Value i, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nested);
        SmallVector<Value> where = at(i);
        Value c = memref::LoadOp::create(ib, buffer, where);
        memref::StoreOp::create(ib, acc[0], buffer, where);
        scf::YieldOp::create(ib,
                             ValueRange{arith::AddIOp::create(ib, acc[0], c)});
      });
  return loop.getResult(0);
}

/// A parallel loop over [0, extents) with `body` in it.
void forEachIndex(ImplicitLocOpBuilder &b, ArrayRef<int64_t> extents,
                  function_ref<void(ImplicitLocOpBuilder &, ValueRange)> body) {
  SmallVector<Value> lower, upper, steps;
  for (int64_t extent : extents) {
    lower.push_back(indexConst(b, 0));
    upper.push_back(indexConst(b, extent));
    steps.push_back(indexConst(b, 1));
  }
  scf::ParallelOp::create(b, lower, upper, steps,
                          [&](OpBuilder &nested, Location loc, ValueRange ivs) {
                            ImplicitLocOpBuilder pb(loc, nested);
                            body(pb, ivs);
                            scf::ReduceOp::create(pb);
                          });
}

/// A stable counting sort per (b, h, round): histogram, exclusive scan,
/// scatter in position order. With `sortTiles` > 1 the sequence is cut
/// into tiles: a histogram per tile (parallel), one exclusive scan per
/// (b, h, round) over (bucket, tile), then a scatter per tile (parallel),
/// each tile starting at its own offsets in every bucket, so the order is
/// the same.
struct LowerBucketSort : OpRewritePattern<BucketSortOp> {
  LowerBucketSort(MLIRContext *context, int64_t sortTiles)
      : OpRewritePattern(context), sortTiles(sortTiles) {}
  int64_t sortTiles;

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
    int64_t tiles =
        std::clamp<int64_t>(sortTiles, 1, std::max<int64_t>(s[3], 1));
    while (tiles > 1 && s[3] % tiles != 0)
      --tiles;
    if (tiles > 1) {
      emitTiledSort(b, buckets, perm, inverse, s, numBuckets, tiles);
      rewriter.replaceOp(op, {toTensor(b, perm), toTensor(b, inverse)});
      return success();
    }

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
            return clampedBucket(
                ib, buckets, ValueRange{ivs[0], ivs[1], ivs[2], i}, numBuckets);
          };
          forLoop(pb, zero, nb, 1, [&](ImplicitLocOpBuilder &ib, Value k) {
            memref::StoreOp::create(ib, indexConst(ib, 0), counts, k);
          });
          forLoop(pb, zero, len, 1, [&](ImplicitLocOpBuilder &ib, Value i) {
            postIncrement(ib, counts, bucketAt(ib, i));
          });
          exclusiveScan(pb, counts, numBuckets,
                        [](Value k) { return SmallVector<Value>{k}; });
          forLoop(pb, zero, len, 1, [&](ImplicitLocOpBuilder &ib, Value i) {
            Value slot = postIncrement(ib, counts, bucketAt(ib, i));
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

  /// The tiled sort; `counts[b, h, r, k, t]` is tile t's count of bucket k,
  /// then its first slot in bucket k, then its next one.
  static void emitTiledSort(ImplicitLocOpBuilder &b, Value buckets, Value perm,
                            Value inverse, ArrayRef<int64_t> s,
                            int64_t numBuckets, int64_t tiles) {
    int64_t rows = s[3] / tiles;
    Value counts = memref::AllocOp::create(
        b, MemRefType::get({s[0], s[1], s[2], numBuckets, tiles},
                           b.getIndexType()));
    Value zero = indexConst(b, 0);
    auto bucketAt = [&](ImplicitLocOpBuilder &ib, ValueRange bhr, Value i) {
      return clampedBucket(ib, buckets, ValueRange{bhr[0], bhr[1], bhr[2], i},
                           numBuckets);
    };
    auto countAt = [&](ValueRange bhr, Value k, Value t) {
      return SmallVector<Value>{bhr[0], bhr[1], bhr[2], k, t};
    };
    // Walks the rows of each tile in order: body(builder, (b, h, r), t, i).
    auto forEachTileRow =
        [&](function_ref<void(ImplicitLocOpBuilder &, ValueRange, Value, Value)>
                body) {
          forEachIndex(b, {s[0], s[1], s[2], tiles},
                       [&](ImplicitLocOpBuilder &pb, ValueRange ivs) {
                         Value first = arith::MulIOp::create(
                             pb, ivs[3], indexConst(pb, rows));
                         forLoop(pb, zero, indexConst(pb, rows), 1,
                                 [&](ImplicitLocOpBuilder &ib, Value u) {
                                   body(ib, ivs.take_front(3), ivs[3],
                                        arith::AddIOp::create(ib, first, u));
                                 });
                       });
        };
    // Histograms (each tile zeroes its own column first).
    forEachIndex(b, {s[0], s[1], s[2], numBuckets, tiles},
                 [&](ImplicitLocOpBuilder &pb, ValueRange ivs) {
                   memref::StoreOp::create(pb, indexConst(pb, 0), counts, ivs);
                 });
    forEachTileRow(
        [&](ImplicitLocOpBuilder &ib, ValueRange bhr, Value t, Value i) {
          postIncrement(ib, counts, countAt(bhr, bucketAt(ib, bhr, i), t));
        });
    // Exclusive scan in (bucket, tile) order, each tile's first slot in
    // each bucket, in three parallel steps: a scan over the tiles of each
    // bucket (leaving the bucket's total), a scan over the buckets' totals,
    // and each bucket's base added to its tiles.
    Value totals = memref::AllocOp::create(
        b, MemRefType::get({s[0], s[1], s[2], numBuckets}, b.getIndexType()));
    forEachIndex(b, {s[0], s[1], s[2], numBuckets},
                 [&](ImplicitLocOpBuilder &pb, ValueRange ivs) {
                   Value total = exclusiveScan(pb, counts, tiles, [&](Value t) {
                     return countAt(ivs.take_front(3), ivs[3], t);
                   });
                   memref::StoreOp::create(pb, total, totals, ivs);
                 });
    forEachIndex(b, {s[0], s[1], s[2]},
                 [&](ImplicitLocOpBuilder &pb, ValueRange bhr) {
                   exclusiveScan(pb, totals, numBuckets, [&](Value k) {
                     return SmallVector<Value>{bhr[0], bhr[1], bhr[2], k};
                   });
                 });
    forEachIndex(b, {s[0], s[1], s[2], numBuckets, tiles},
                 [&](ImplicitLocOpBuilder &pb, ValueRange ivs) {
                   Value base =
                       memref::LoadOp::create(pb, totals, ivs.take_front(4));
                   Value c = memref::LoadOp::create(pb, counts, ivs);
                   memref::StoreOp::create(
                       pb, arith::AddIOp::create(pb, c, base), counts, ivs);
                 });
    // Scatter: each tile fills its slots in position order.
    forEachTileRow(
        [&](ImplicitLocOpBuilder &ib, ValueRange bhr, Value t, Value i) {
          Value slot =
              postIncrement(ib, counts, countAt(bhr, bucketAt(ib, bhr, i), t));
          memref::StoreOp::create(
              ib, arith::IndexCastOp::create(ib, ib.getI32Type(), i), perm,
              ValueRange{bhr[0], bhr[1], bhr[2], slot});
          memref::StoreOp::create(
              ib, arith::IndexCastOp::create(ib, ib.getI32Type(), slot),
              inverse, ValueRange{bhr[0], bhr[1], bhr[2], i});
        });
    // The deallocation pipeline frees `counts` after its last use.
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

/// The per-round outputs weighted by the softmax over rounds of their
/// log-sum-exps (roundWeights).
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
    Value weights = roundWeights(b, op.getLse());
    // One elementwise pass over (b, h, i, d) with every round an operand of
    // its own: each output element is written once, from registers (no
    // zero fill, no read-modify-write per round).
    Type elementType = outType.getElementType();
    int64_t rounds = s[2];
    SmallVector<Value> inputs;
    SmallVector<AffineMap> maps;
    auto roundSlice = [&](Value from, ArrayRef<int64_t> shape, int64_t r) {
      SmallVector<OpFoldResult> offsets(shape.size(), b.getIndexAttr(0)), sizes,
          strides(shape.size(), b.getIndexAttr(1));
      for (int64_t extent : shape)
        sizes.push_back(b.getIndexAttr(extent));
      offsets[2] = b.getIndexAttr(r);
      sizes[2] = b.getIndexAttr(1);
      SmallVector<int64_t> reduced(shape);
      reduced.erase(reduced.begin() + 2);
      auto type = RankedTensorType::get(
          reduced, cast<RankedTensorType>(from.getType()).getElementType());
      return tensor::ExtractSliceOp::create(b, type, from, offsets, sizes,
                                            strides)
          .getResult();
    };
    for (int64_t r = 0; r < rounds; ++r) {
      inputs.push_back(roundSlice(op.getOut(), s, r));
      maps.push_back(identity(ctx, 4));
    }
    for (int64_t r = 0; r < rounds; ++r) {
      inputs.push_back(roundSlice(weights, {s[0], s[1], s[2], s[3]}, r));
      maps.push_back(projection(ctx, 4, {0, 1, 2}));
    }
    // Heads merged right after: write [B, L, H, D] directly, so merge_heads
    // is a reshape instead of a transposed copy.
    auto merge = op->hasOneUse()
                     ? dyn_cast<MergeHeadsOp>(*op->getUsers().begin())
                     : MergeHeadsOp();
    SmallVector<int64_t> resultShape = {s[0], s[1], s[3], s[4]};
    if (merge) {
      resultShape = {s[0], s[3], s[1], s[4]};
      maps.push_back(projection(ctx, 4, {0, 2, 1, 3}));
    } else {
      maps.push_back(identity(ctx, 4));
    }
    Value acc = generic(
        b, inputs, emptyTensor(b, resultShape, elementType), maps, 4, {},
        [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value sum = arith::MulFOp::create(ib, a[rounds], toF32(ib, a[0]));
          for (int64_t r = 1; r < rounds; ++r)
            sum = arith::AddFOp::create(
                ib, sum,
                arith::MulFOp::create(ib, a[rounds + r], toF32(ib, a[r])));
          linalg::YieldOp::create(ib,
                                  ValueRange{fromF32(ib, sum, elementType)});
        })[0];
    if (merge) {
      rewriter.replaceOp(merge,
                         tensor::CollapseShapeOp::create(
                             b, merge.getType(), acc,
                             ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}}));
      rewriter.eraseOp(op);
      return success();
    }
    rewriter.replaceOp(op, acc);
    return success();
  }
};

} // namespace

void reformer::populateLshStepLoweringPatterns(RewritePatternSet &patterns,
                                               int64_t sortTiles) {
  patterns
      .add<LowerLshRotations, LowerLshHash, LowerUnsort, LowerCombineRounds>(
          patterns.getContext());
  patterns.add<LowerBucketSort>(patterns.getContext(), sortTiles);
}
