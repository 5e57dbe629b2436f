//===- Attention.cpp - sorted_chunk_attention, local_attention → loops ----===//
//
// Both attentions are a parallel loop over (batch, head, query chunk). Each
// iteration gathers its c queries and the W·c keys/values of its window
// into small contiguous scratch buffers, computes the c × W·c scores with
// one linalg.matmul, applies the masks and a row softmax with 16-lane
// vector code, and takes P·V with a second linalg.matmul (both matmuls
// become register-blocked kernels, rf-vectorize-matmuls). Scratch is
// O(c·W·c + W·c·D) per worker: nothing of size L × L, whatever L.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

constexpr int64_t kLanes = 16;

/// What a block reads (memrefs) and how it is shaped.
struct BlockOperands {
  Value queries, keys, values; ///< [B, H, L, D]; keys already scaled.
  Value mask;                  ///< [B, L] i1, or null.
  int64_t queriesPerBlock, keysPerBlock, headDim;
  bool causal, selfMask;
};

/// Where the block's queries and keys are, and where results go.
struct BlockCallbacks {
  /// Sequence position of query t of the block.
  function_ref<Value(ImplicitLocOpBuilder &, Value)> queryPosition;
  /// Sequence position of key u and whether it exists (null: always).
  function_ref<std::pair<Value, Value>(ImplicitLocOpBuilder &, Value)>
      keyPosition;
  /// Extra score term for (query position, key position), or null.
  function_ref<Value(ImplicitLocOpBuilder &, Value, Value)> extraScore;
  /// Where query t (at sequence position `qi`) writes: the output row's
  /// buffer and indices (all but the last, D), and its log-sum-exp element.
  function_ref<std::pair<Value, SmallVector<Value>>(ImplicitLocOpBuilder &,
                                                    Value, Value)>
      outputRow;
  function_ref<std::pair<Value, SmallVector<Value>>(ImplicitLocOpBuilder &,
                                                    Value, Value)>
      lseElement;
};

/// Per-block scratch on the heap: a parallel loop run serially keeps no
/// allocation scope per iteration, so stack scratch would pile up. The
/// deallocation pipeline frees it at the end of the block.
Value scratch(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape, Type type) {
  return memref::AllocOp::create(b, MemRefType::get(shape, type),
                                 b.getI64IntegerAttr(64));
}

Value i32(ImplicitLocOpBuilder &b, Value index) {
  return arith::IndexCastOp::create(b, b.getI32Type(), index);
}

/// Copies row `src[srcPrefix…, :]` (D elements, widened to f32) into
/// `dst[dstPrefix…, :]`, 16 lanes at a time when D allows; rows of a key
/// that does not exist (`exists` false) become zeros.
void copyRow(ImplicitLocOpBuilder &b, Value src, ValueRange srcPrefix,
             Value dst, ValueRange dstPrefix, int64_t dim, Value exists) {
  Type srcType = cast<MemRefType>(src.getType()).getElementType();
  int64_t step = dim % kLanes == 0 ? kLanes : 1;
  Value zero = indexConst(b, 0);
  forLoop(b, zero, indexConst(b, dim), step,
          [&](ImplicitLocOpBuilder &lb, Value e) {
            SmallVector<Value> from(srcPrefix), to(dstPrefix);
            from.push_back(e);
            to.push_back(e);
            if (step == 1) {
              Value x = toF32(lb, memref::LoadOp::create(lb, src, from));
              if (exists)
                x = arith::SelectOp::create(lb, exists, x, f32Const(lb, 0.0));
              memref::StoreOp::create(lb, x, dst, to);
              return;
            }
            auto wide = VectorType::get({kLanes}, lb.getF32Type());
            Value x = vector::LoadOp::create(
                lb, VectorType::get({kLanes}, srcType), src, from);
            if (!srcType.isF32())
              x = arith::ExtFOp::create(lb, wide, x);
            if (exists)
              x = arith::SelectOp::create(
                  lb, exists, x,
                  vector::BroadcastOp::create(lb, wide, f32Const(lb, 0.0)));
            vector::StoreOp::create(lb, x, dst, to);
          });
}

/// One (batch, head, query chunk) block.
void emitBlock(ImplicitLocOpBuilder &b, const BlockOperands &in, Value batch,
               Value head, const BlockCallbacks &cb) {
  int64_t c = in.queriesPerBlock, w = in.keysPerBlock, d = in.headDim;
  Type f32 = b.getF32Type();
  Value q = scratch(b, {c, d}, f32), kt = scratch(b, {d, w}, f32);
  Value v = scratch(b, {w, d}, f32), s = scratch(b, {c, w}, f32);
  Value o = scratch(b, {c, d}, f32);
  Value qpos = scratch(b, {c}, b.getI32Type());
  Value kpos = scratch(b, {w}, b.getI32Type());
  Value kbias = scratch(b, {w}, f32);
  Value rowMax = scratch(b, {c}, f32), rowSum = scratch(b, {c}, f32);
  Value zero = indexConst(b, 0);
  Value dim = indexConst(b, d);

  // Gather the queries.
  forLoop(b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value t) {
    Value i = cb.queryPosition(ib, t);
    memref::StoreOp::create(ib, i32(ib, i), qpos, ValueRange{t});
    copyRow(ib, in.queries, ValueRange{batch, head, i}, q, ValueRange{t}, d,
            Value());
  });
  // Keys are gathered as rows and transposed 16 × 16 tiles at a time in
  // registers when the shapes allow (element-wise transposed stores become
  // slow scatters).
  bool tiled = w % kLanes == 0 && d % kLanes == 0;
  Value kRows = tiled ? scratch(b, {w, d}, f32) : Value();
  // Gather the keys (transposed, for the score matmul) and values; absent
  // keys get position −1, zeros and a −inf bias.
  forLoop(b, zero, indexConst(b, w), 1, [&](ImplicitLocOpBuilder &ib, Value u) {
    auto [j, exists] = cb.keyPosition(ib, u);
    Value safe = exists ? arith::SelectOp::create(ib, exists, j, zero) : j;
    Value bias = f32Const(ib, 0.0);
    if (in.mask) {
      Value keep = memref::LoadOp::create(ib, in.mask, ValueRange{batch, safe});
      bias =
          arith::SelectOp::create(ib, keep, bias, f32Const(ib, kMaskedScore));
    }
    Value pos = i32(ib, safe);
    if (exists) {
      bias = arith::SelectOp::create(
          ib, exists, bias,
          f32Const(ib, -std::numeric_limits<double>::infinity()));
      pos = arith::SelectOp::create(
          ib, exists, pos,
          arith::ConstantOp::create(ib, ib.getI32IntegerAttr(-1)));
    }
    memref::StoreOp::create(ib, bias, kbias, ValueRange{u});
    memref::StoreOp::create(ib, pos, kpos, ValueRange{u});
    if (tiled) {
      copyRow(ib, in.keys, ValueRange{batch, head, safe}, kRows, ValueRange{u},
              d, exists);
    } else {
      forLoop(ib, zero, dim, 1, [&](ImplicitLocOpBuilder &lb, Value e) {
        Value k = toF32(lb, memref::LoadOp::create(
                                lb, in.keys, ValueRange{batch, head, safe, e}));
        if (exists)
          k = arith::SelectOp::create(lb, exists, k, f32Const(lb, 0.0));
        memref::StoreOp::create(lb, k, kt, ValueRange{e, u});
      });
    }
    copyRow(ib, in.values, ValueRange{batch, head, safe}, v, ValueRange{u}, d,
            exists);
  });

  if (tiled) {
    auto tileType = VectorType::get({kLanes, kLanes}, f32);
    SmallVector<bool> inBounds = {true, true};
    forLoop(b, zero, indexConst(b, w), kLanes,
            [&](ImplicitLocOpBuilder &ib, Value u0) {
              forLoop(ib, zero, dim, kLanes,
                      [&](ImplicitLocOpBuilder &lb, Value e0) {
                        Value tile = vector::TransferReadOp::create(
                            lb, tileType, kRows, ValueRange{u0, e0},
                            f32Const(lb, 0.0), ArrayRef<bool>(inBounds));
                        Value flipped = vector::TransposeOp::create(
                            lb, tile, ArrayRef<int64_t>{1, 0});
                        vector::TransferWriteOp::create(
                            lb, flipped, kt, ValueRange{e0, u0},
                            ArrayRef<bool>(inBounds));
                      });
            });
  }

  // Scores.
  linalg::FillOp::create(b, ValueRange{f32Const(b, 0.0)}, ValueRange{s});
  linalg::MatmulOp::create(b, ValueRange{q, kt}, ValueRange{s});

  // Pair-dependent extra terms (duplicate correction), scalar.
  if (cb.extraScore)
    forLoop(
        b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value t) {
          Value i = arith::IndexCastOp::create(
              ib, ib.getIndexType(),
              memref::LoadOp::create(ib, qpos, ValueRange{t}));
          forLoop(
              ib, zero, indexConst(ib, w), 1,
              [&](ImplicitLocOpBuilder &lb, Value u) {
                Value pos = memref::LoadOp::create(lb, kpos, ValueRange{u});
                Value j = arith::IndexCastOp::create(
                    lb, lb.getIndexType(),
                    arith::MaxSIOp::create(lb, pos,
                                           arith::ConstantOp::create(
                                               lb, lb.getI32IntegerAttr(0))));
                Value sv = memref::LoadOp::create(lb, s, ValueRange{t, u});
                sv = arith::AddFOp::create(lb, sv, cb.extraScore(lb, i, j));
                memref::StoreOp::create(lb, sv, s, ValueRange{t, u});
              });
        });

  // Masks and softmax, 16 keys at a time, then a scalar tail.
  auto vecType = VectorType::get({kLanes}, f32);
  auto vecI32 = VectorType::get({kLanes}, b.getI32Type());
  int64_t full = w / kLanes * kLanes;
  auto maskedScore = [&](ImplicitLocOpBuilder &lb, Value score, Value pos,
                         Value bias, Value qi, bool vector) {
    auto splat = [&](double value) -> Value {
      Value scalar = f32Const(lb, value);
      return vector ? vector::BroadcastOp::create(lb, vecType, scalar) : scalar;
    };
    Value qb = vector ? Value(vector::BroadcastOp::create(lb, vecI32, qi)) : qi;
    Value x = arith::AddFOp::create(lb, score, bias);
    if (in.causal) {
      Value later =
          arith::CmpIOp::create(lb, arith::CmpIPredicate::sgt, pos, qb);
      x = arith::SelectOp::create(
          lb, later, arith::AddFOp::create(lb, x, splat(kMaskedScore)), x);
    }
    if (in.selfMask) {
      Value self = arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, pos, qb);
      x = arith::SelectOp::create(
          lb, self, arith::AddFOp::create(lb, x, splat(kSelfScore)), x);
    }
    return x;
  };
  forLoop(b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value t) {
    Value qi = memref::LoadOp::create(ib, qpos, ValueRange{t});
    Value negInf = f32Const(ib, -std::numeric_limits<double>::infinity());
    // Pass 1: masked scores and their maximum.
    // Lane-wise running max/sum, reduced once per row: a scalar-carried
    // reduction per vector would be a strict chain of 16 dependent ops.
    Value negInfVec = vector::BroadcastOp::create(ib, vecType, negInf);
    auto vmax = scf::ForOp::create(
        ib, zero, indexConst(ib, full), indexConst(ib, kLanes),
        ValueRange{negInfVec},
        [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
          ImplicitLocOpBuilder lb(loc, nested);
          Value sv = vector::LoadOp::create(lb, vecType, s, ValueRange{t, u});
          Value pos = vector::LoadOp::create(lb, vecI32, kpos, ValueRange{u});
          Value bias =
              vector::LoadOp::create(lb, vecType, kbias, ValueRange{u});
          Value x = maskedScore(lb, sv, pos, bias, qi, true);
          vector::StoreOp::create(lb, x, s, ValueRange{t, u});
          scf::YieldOp::create(
              lb, ValueRange{arith::MaximumFOp::create(lb, acc[0], x)});
        });
    Value vmaxScalar = vector::ReductionOp::create(
        ib, vector::CombiningKind::MAXIMUMF, vmax.getResult(0));
    auto smax = scf::ForOp::create(
        ib, indexConst(ib, full), indexConst(ib, w), indexConst(ib, 1),
        ValueRange{vmaxScalar},
        [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
          ImplicitLocOpBuilder lb(loc, nested);
          Value sv = memref::LoadOp::create(lb, s, ValueRange{t, u});
          Value pos = memref::LoadOp::create(lb, kpos, ValueRange{u});
          Value bias = memref::LoadOp::create(lb, kbias, ValueRange{u});
          Value x = maskedScore(lb, sv, pos, bias, qi, false);
          memref::StoreOp::create(lb, x, s, ValueRange{t, u});
          scf::YieldOp::create(
              lb, ValueRange{arith::MaximumFOp::create(lb, acc[0], x)});
        });
    Value m = smax.getResult(0);
    // Pass 2: p = exp(x − max), and their sum.
    Value mv = vector::BroadcastOp::create(ib, vecType, m);
    Value zeroVec = vector::BroadcastOp::create(ib, vecType, f32Const(ib, 0.0));
    auto vsum = scf::ForOp::create(
        ib, zero, indexConst(ib, full), indexConst(ib, kLanes),
        ValueRange{zeroVec},
        [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
          ImplicitLocOpBuilder lb(loc, nested);
          Value x = vector::LoadOp::create(lb, vecType, s, ValueRange{t, u});
          Value p = math::ExpOp::create(lb, arith::SubFOp::create(lb, x, mv));
          vector::StoreOp::create(lb, p, s, ValueRange{t, u});
          scf::YieldOp::create(
              lb, ValueRange{arith::AddFOp::create(lb, acc[0], p)});
        });
    Value vsumScalar = vector::ReductionOp::create(
        ib, vector::CombiningKind::ADD, vsum.getResult(0));
    auto ssum = scf::ForOp::create(
        ib, indexConst(ib, full), indexConst(ib, w), indexConst(ib, 1),
        ValueRange{vsumScalar},
        [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
          ImplicitLocOpBuilder lb(loc, nested);
          Value x = memref::LoadOp::create(lb, s, ValueRange{t, u});
          Value p = math::ExpOp::create(lb, arith::SubFOp::create(lb, x, m));
          memref::StoreOp::create(lb, p, s, ValueRange{t, u});
          scf::YieldOp::create(
              lb, ValueRange{arith::AddFOp::create(lb, acc[0], p)});
        });
    memref::StoreOp::create(ib, m, rowMax, ValueRange{t});
    memref::StoreOp::create(ib, ssum.getResult(0), rowSum, ValueRange{t});
  });

  // Outputs: P·V, normalized per row.
  linalg::FillOp::create(b, ValueRange{f32Const(b, 0.0)}, ValueRange{o});
  linalg::MatmulOp::create(b, ValueRange{s, v}, ValueRange{o});
  forLoop(b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value t) {
    Value sum = memref::LoadOp::create(ib, rowSum, ValueRange{t});
    Value inv = arith::DivFOp::create(ib, f32Const(ib, 1.0), sum);
    Value qi = arith::IndexCastOp::create(
        ib, ib.getIndexType(), memref::LoadOp::create(ib, qpos, ValueRange{t}));
    auto [buffer, prefix] = cb.outputRow(ib, t, qi);
    Type outType = cast<MemRefType>(buffer.getType()).getElementType();
    int64_t step = d % kLanes == 0 ? kLanes : 1;
    forLoop(ib, zero, dim, step, [&](ImplicitLocOpBuilder &lb, Value e) {
      SmallVector<Value> to(prefix);
      to.push_back(e);
      if (step == 1) {
        Value x = memref::LoadOp::create(lb, o, ValueRange{t, e});
        memref::StoreOp::create(
            lb, fromF32(lb, arith::MulFOp::create(lb, x, inv), outType), buffer,
            to);
        return;
      }
      Value x = vector::LoadOp::create(lb, VectorType::get({kLanes}, f32), o,
                                       ValueRange{t, e});
      x = arith::MulFOp::create(
          lb, x,
          vector::BroadcastOp::create(lb, VectorType::get({kLanes}, f32), inv));
      if (!outType.isF32())
        x = arith::TruncFOp::create(lb, VectorType::get({kLanes}, outType), x);
      vector::StoreOp::create(lb, x, buffer, to);
    });
    if (cb.lseElement) {
      Value m = memref::LoadOp::create(ib, rowMax, ValueRange{t});
      auto [lseBuffer, at] = cb.lseElement(ib, t, qi);
      memref::StoreOp::create(
          ib, arith::AddFOp::create(ib, m, math::LogOp::create(ib, sum)),
          lseBuffer, at);
    }
  });
}

/// `k_j = x_j / sqrt(mean(x_j²) + eps) / sqrt(D)` in f32, as a tensor.
Value normalizedKeys(ImplicitLocOpBuilder &b, Value qk) {
  MLIRContext *ctx = b.getContext();
  auto type = cast<RankedTensorType>(qk.getType());
  ArrayRef<int64_t> s = type.getShape();
  double d = static_cast<double>(s[3]);
  AffineMap all = identity(ctx, 4), row = projection(ctx, 4, {0, 1, 2});
  Value sumSq =
      generic(b, qk, filledTensor(b, {s[0], s[1], s[2]}, 0.0), {all, row}, 4,
              {3}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                Value x = toF32(ib, a[0]);
                linalg::YieldOp::create(
                    ib, ValueRange{arith::AddFOp::create(
                            ib, a[1], arith::MulFOp::create(ib, x, x))});
              })[0];
  return generic(
      b, ValueRange{qk, sumSq}, emptyTensor(b, s, b.getF32Type()),
      {all, row, all}, 4, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value meanSq = arith::MulFOp::create(ib, a[1], f32Const(ib, 1.0 / d));
        Value inv = math::RsqrtOp::create(
            ib, arith::AddFOp::create(ib, meanSq, f32Const(ib, kKeyNormEps)));
        Value k = arith::MulFOp::create(
            ib, arith::MulFOp::create(ib, toF32(ib, a[0]), inv),
            f32Const(ib, 1.0 / std::sqrt(d)));
        linalg::YieldOp::create(ib, ValueRange{k});
      })[0];
}

/// `(a mod n)` for a possibly negative `a` and positive constant `n`.
Value positiveMod(ImplicitLocOpBuilder &b, Value a, int64_t n) {
  Value nv = indexConst(b, n);
  Value r = arith::RemSIOp::create(b, a, nv);
  Value neg =
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, r, indexConst(b, 0));
  return arith::SelectOp::create(b, neg, arith::AddIOp::create(b, r, nv), r);
}

/// The parallel loop over (batch, head, query chunk).
void forEachBlock(ImplicitLocOpBuilder &b, int64_t batch, int64_t heads,
                  int64_t chunks,
                  function_ref<void(ImplicitLocOpBuilder &, ValueRange)> body) {
  Value zero = indexConst(b, 0), one = indexConst(b, 1);
  scf::ParallelOp::create(b, ValueRange{zero, zero, zero},
                          ValueRange{indexConst(b, batch), indexConst(b, heads),
                                     indexConst(b, chunks)},
                          ValueRange{one, one, one},
                          [&](OpBuilder &nested, Location loc, ValueRange ivs) {
                            ImplicitLocOpBuilder pb(loc, nested);
                            body(pb, ivs);
                            scf::ReduceOp::create(pb);
                          });
}

struct LowerSortedChunkAttention : OpRewritePattern<SortedChunkAttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SortedChunkAttentionOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto qkType = cast<RankedTensorType>(op.getQk().getType());
    auto permType = cast<RankedTensorType>(op.getPerm().getType());
    if (!qkType.hasStaticShape() || !permType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> shape = qkType.getShape();
    int64_t len = shape[2], dim = shape[3];
    int64_t rounds = permType.getDimSize(2);
    int64_t chunk = op.getChunkLen();
    int64_t numChunks = rounds * len / chunk;
    int64_t before = op.getChunksBefore(), after = op.getChunksAfter();
    int64_t windowChunks = before + 1 + after;
    bool sequenceOrder = op.getSequenceOrder();

    Value keys = toBuffer(b, normalizedKeys(b, op.getQk()));
    Value queries = toBuffer(b, op.getQk());
    Value values = toBuffer(b, op.getV());
    Value perm = toBuffer(b, op.getPerm());
    Value inverse = op.getInverse() ? toBuffer(b, op.getInverse()) : Value();
    Value mask = op.getMask() ? toBuffer(b, op.getMask()) : Value();
    auto outType = cast<RankedTensorType>(op.getOut().getType());
    Value out = allocBuffer(b, outType);
    Value lse = allocBuffer(b, cast<RankedTensorType>(op.getLse().getType()));
    BlockOperands in{queries, keys,           values,
                     mask,    chunk,          windowChunks * chunk,
                     dim,     op.getCausal(), /*selfMask=*/true};

    forEachBlock(
        b, shape[0], shape[1], numChunks,
        [&](ImplicitLocOpBuilder &pb, ValueRange ivs) {
          Value batch = ivs[0], head = ivs[1], qc = ivs[2];
          // Sorted slot → (round, slot within the round) → position.
          auto split = [&](ImplicitLocOpBuilder &ib, Value slot) {
            return std::make_pair(
                arith::DivUIOp::create(ib, slot, indexConst(ib, len))
                    .getResult(),
                arith::RemUIOp::create(ib, slot, indexConst(ib, len))
                    .getResult());
          };
          auto positionAt = [&](ImplicitLocOpBuilder &ib, Value slot) -> Value {
            auto [round, within] = split(ib, slot);
            return arith::IndexCastOp::create(
                ib, ib.getIndexType(),
                memref::LoadOp::create(ib, perm,
                                       ValueRange{batch, head, round, within}));
          };
          auto querySlot = [&](ImplicitLocOpBuilder &ib, Value t) -> Value {
            return arith::AddIOp::create(
                ib, arith::MulIOp::create(ib, qc, indexConst(ib, chunk)), t);
          };
          auto chunkOfInverse = [&](ImplicitLocOpBuilder &ib, Value r,
                                    Value pos) -> Value {
            Value slot = arith::IndexCastOp::create(
                ib, ib.getIndexType(),
                memref::LoadOp::create(ib, inverse,
                                       ValueRange{batch, head, r, pos}));
            Value global = arith::AddIOp::create(
                ib, arith::MulIOp::create(ib, r, indexConst(ib, len)), slot);
            return arith::DivUIOp::create(ib, global, indexConst(ib, chunk));
          };
          // −log N_ij, N_ij the number of (query copy, key copy) windows where
          // positions i and j meet over all rounds.
          auto duplicates = [&](ImplicitLocOpBuilder &ib, Value i,
                                Value j) -> Value {
            auto outer = scf::ForOp::create(
                ib, indexConst(ib, 0), indexConst(ib, rounds),
                indexConst(ib, 1), ValueRange{indexConst(ib, 0)},
                [&](OpBuilder &n1, Location l1, Value r1, ValueRange c1) {
                  ImplicitLocOpBuilder b1(l1, n1);
                  Value qChunk = chunkOfInverse(b1, r1, i);
                  auto inner = scf::ForOp::create(
                      b1, indexConst(b1, 0), indexConst(b1, rounds),
                      indexConst(b1, 1), ValueRange{c1[0]},
                      [&](OpBuilder &n2, Location l2, Value r2, ValueRange c2) {
                        ImplicitLocOpBuilder b2(l2, n2);
                        Value diff = positiveMod(
                            b2,
                            arith::SubIOp::create(b2, chunkOfInverse(b2, r2, j),
                                                  qChunk),
                            numChunks);
                        Value meets = arith::OrIOp::create(
                            b2,
                            arith::CmpIOp::create(b2, arith::CmpIPredicate::ule,
                                                  diff, indexConst(b2, after)),
                            arith::CmpIOp::create(
                                b2, arith::CmpIPredicate::uge, diff,
                                indexConst(b2, numChunks - before)));
                        Value inc = arith::SelectOp::create(
                            b2, meets, indexConst(b2, 1), indexConst(b2, 0));
                        scf::YieldOp::create(
                            b2,
                            ValueRange{arith::AddIOp::create(b2, c2[0], inc)});
                      });
                  scf::YieldOp::create(b1, inner.getResult(0));
                });
            Value n = arith::UIToFPOp::create(
                ib, ib.getF32Type(),
                arith::IndexCastOp::create(ib, ib.getI64Type(),
                                           outer.getResult(0)));
            return arith::NegFOp::create(ib, math::LogOp::create(ib, n));
          };
          BlockCallbacks cb;
          auto queryPositionFn = [&](ImplicitLocOpBuilder &ib, Value t) {
            return positionAt(ib, querySlot(ib, t));
          };
          auto keyPositionFn = [&](ImplicitLocOpBuilder &ib, Value u) {
            Value wIdx = arith::DivUIOp::create(ib, u, indexConst(ib, chunk));
            Value within = arith::RemUIOp::create(ib, u, indexConst(ib, chunk));
            Value kc = positiveMod(
                ib,
                arith::AddIOp::create(
                    ib, qc,
                    arith::SubIOp::create(ib, wIdx, indexConst(ib, before))),
                numChunks);
            Value slot = arith::AddIOp::create(
                ib, arith::MulIOp::create(ib, kc, indexConst(ib, chunk)),
                within);
            return std::make_pair(positionAt(ib, slot), Value());
          };
          // Sorted order by default; sequence order (position qi) when the
          // unsort is fused in.
          auto rowIndices = [&](ImplicitLocOpBuilder &ib, Value t, Value qi) {
            auto [round, within] = split(ib, querySlot(ib, t));
            return SmallVector<Value>{batch, head, round,
                                      sequenceOrder ? qi : within};
          };
          auto outputRowFn = [&](ImplicitLocOpBuilder &ib, Value t, Value qi) {
            return std::make_pair(out, rowIndices(ib, t, qi));
          };
          auto lseElementFn = [&](ImplicitLocOpBuilder &ib, Value t, Value qi) {
            return std::make_pair(lse, rowIndices(ib, t, qi));
          };
          // function_refs must point at named lambdas that outlive the call.
          cb.queryPosition = queryPositionFn;
          cb.keyPosition = keyPositionFn;
          cb.outputRow = outputRowFn;
          cb.lseElement = lseElementFn;
          if (op.getDuplicateCorrection())
            cb.extraScore = duplicates;
          emitBlock(pb, in, batch, head, cb);
        });
    rewriter.replaceOp(op, {toTensor(b, out), toTensor(b, lse)});
    return success();
  }
};

struct LowerLocalAttention : OpRewritePattern<LocalAttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LocalAttentionOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getQ().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> s = type.getShape();
    int64_t len = s[2], dim = s[3];
    int64_t chunk = op.getChunkLen(), numChunks = len / chunk;
    int64_t before = op.getChunksBefore(), after = op.getChunksAfter();

    // Fold 1/sqrt(D) into the keys once.
    double scale = 1.0 / std::sqrt(static_cast<double>(dim));
    Value scaledKeys = scaledF32Tensor(b, op.getK(), scale);
    auto outType = cast<RankedTensorType>(op.getType());
    Value out = allocBuffer(b, outType);
    BlockOperands in{toBuffer(b, op.getQ()),
                     toBuffer(b, scaledKeys),
                     toBuffer(b, op.getV()),
                     op.getMask() ? toBuffer(b, op.getMask()) : Value(),
                     chunk,
                     (before + 1 + after) * chunk,
                     dim,
                     op.getCausal(),
                     /*selfMask=*/false};

    forEachBlock(
        b, s[0], s[1], numChunks,
        [&](ImplicitLocOpBuilder &pb, ValueRange ivs) {
          Value batch = ivs[0], head = ivs[1], qc = ivs[2];
          Value first = arith::MulIOp::create(pb, qc, indexConst(pb, chunk));
          BlockCallbacks cb;
          auto queryPositionFn = [&](ImplicitLocOpBuilder &ib,
                                     Value t) -> Value {
            return arith::AddIOp::create(ib, first, t);
          };
          // Keys of chunks outside the sequence do not exist (no
          // wrap-around).
          auto keyPositionFn = [&](ImplicitLocOpBuilder &ib, Value u) {
            Value j =
                arith::SubIOp::create(ib, arith::AddIOp::create(ib, first, u),
                                      indexConst(ib, before * chunk));
            Value exists = arith::AndIOp::create(
                ib,
                arith::CmpIOp::create(ib, arith::CmpIPredicate::sge, j,
                                      indexConst(ib, 0)),
                arith::CmpIOp::create(ib, arith::CmpIPredicate::slt, j,
                                      indexConst(ib, len)));
            return std::make_pair(Value(j), Value(exists));
          };
          auto outputRowFn = [&](ImplicitLocOpBuilder &ib, Value t, Value qi) {
            return std::make_pair(out, SmallVector<Value>{batch, head, qi});
          };
          // function_refs must point at named lambdas that outlive the
          // call.
          cb.queryPosition = queryPositionFn;
          cb.keyPosition = keyPositionFn;
          cb.outputRow = outputRowFn;
          emitBlock(pb, in, batch, head, cb);
        });
    rewriter.replaceOp(op, toTensor(b, out));
    return success();
  }
};

} // namespace

void reformer::populateAttentionLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerSortedChunkAttention, LowerLocalAttention>(
      patterns.getContext());
}
