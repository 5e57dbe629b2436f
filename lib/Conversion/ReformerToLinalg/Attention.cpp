//===- Attention.cpp - sorted_chunk_attention, local_attention → loops ----===//
//
// Both attentions are a parallel loop over (batch, head, query chunk); each
// query runs an online softmax (running max, running sum, rescaled
// accumulator) over the keys of its window, so no score matrix is ever
// stored: memory is O(L·D) whatever the window.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

/// What one query's online softmax reads; buffers are memrefs.
struct AttentionOperands {
  Value queries, keys, values; ///< [B, H, L, D]; keys already scaled.
  Value mask;                  ///< [B, L] i1, or null.
  Value batch, head;
  int64_t headDim;
  bool causal, selfMask;
};

/// Running state of one query's softmax; the accumulator lives in `acc`.
struct SoftmaxState {
  Value max, sum;
};

Value loadF32(ImplicitLocOpBuilder &b, Value buffer, ValueRange indices) {
  return toF32(b, memref::LoadOp::create(b, buffer, indices));
}

/// Adds key `j` (score bias `extra`, or null) to the softmax of query `i`.
SoftmaxState attendKey(ImplicitLocOpBuilder &b, const AttentionOperands &in,
                       Value acc, Value i, Value j, Value extra,
                       SoftmaxState state) {
  Value zero = indexConst(b, 0), one = indexConst(b, 1);
  Value dim = indexConst(b, in.headDim);
  auto dot = scf::ForOp::create(
      b, zero, dim, one, ValueRange{f32Const(b, 0.0)},
      [&](OpBuilder &nested, Location loc, Value d, ValueRange sum) {
        ImplicitLocOpBuilder ib(loc, nested);
        Value q = loadF32(ib, in.queries, {in.batch, in.head, i, d});
        Value k = loadF32(ib, in.keys, {in.batch, in.head, j, d});
        scf::YieldOp::create(ib,
                             ValueRange{arith::AddFOp::create(
                                 ib, sum[0], arith::MulFOp::create(ib, q, k))});
      });
  Value s = dot.getResult(0);
  auto addIf = [&](Value cond, double bias) {
    s = arith::SelectOp::create(
        b, cond, arith::AddFOp::create(b, s, f32Const(b, bias)), s);
  };
  if (in.causal)
    addIf(arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, j, i),
          kMaskedScore);
  if (in.selfMask)
    addIf(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, j, i), kSelfScore);
  if (in.mask) {
    Value keep = memref::LoadOp::create(b, in.mask, ValueRange{in.batch, j});
    Value drop = arith::XOrIOp::create(
        b, keep, arith::ConstantOp::create(b, b.getBoolAttr(true)));
    addIf(drop, kMaskedScore);
  }
  if (extra)
    s = arith::AddFOp::create(b, s, extra);

  Value newMax = arith::MaximumFOp::create(b, state.max, s);
  Value alpha =
      math::ExpOp::create(b, arith::SubFOp::create(b, state.max, newMax));
  Value p = math::ExpOp::create(b, arith::SubFOp::create(b, s, newMax));
  Value newSum =
      arith::AddFOp::create(b, arith::MulFOp::create(b, state.sum, alpha), p);
  forLoop(b, zero, dim, 1, [&](ImplicitLocOpBuilder &ib, Value d) {
    Value a = memref::LoadOp::create(ib, acc, ValueRange{d});
    Value v = loadF32(ib, in.values, {in.batch, in.head, j, d});
    Value updated =
        arith::AddFOp::create(ib, arith::MulFOp::create(ib, a, alpha),
                              arith::MulFOp::create(ib, p, v));
    memref::StoreOp::create(ib, updated, acc, ValueRange{d});
  });
  return {newMax, newSum};
}

/// Runs `visitKeys` between a fresh softmax state and the final write of
/// `acc / sum` through `store(d, value)`; returns the log-sum-exp.
Value onlineSoftmax(
    ImplicitLocOpBuilder &b, Value acc, int64_t headDim,
    function_ref<SoftmaxState(ImplicitLocOpBuilder &, SoftmaxState)> visitKeys,
    function_ref<void(ImplicitLocOpBuilder &, Value, Value)> store) {
  Value zero = indexConst(b, 0), dim = indexConst(b, headDim);
  forLoop(b, zero, dim, 1, [&](ImplicitLocOpBuilder &ib, Value d) {
    memref::StoreOp::create(ib, f32Const(ib, 0.0), acc, ValueRange{d});
  });
  SoftmaxState state{f32Const(b, -std::numeric_limits<double>::infinity()),
                     f32Const(b, 0.0)};
  state = visitKeys(b, state);
  Value inv = arith::DivFOp::create(b, f32Const(b, 1.0), state.sum);
  forLoop(b, zero, dim, 1, [&](ImplicitLocOpBuilder &ib, Value d) {
    Value a = memref::LoadOp::create(ib, acc, ValueRange{d});
    store(ib, d, arith::MulFOp::create(ib, a, inv));
  });
  return arith::AddFOp::create(b, state.max, math::LogOp::create(b, state.sum));
}

/// `scf.for` over [lb, ub) carrying the softmax state.
SoftmaxState
loopKeys(ImplicitLocOpBuilder &b, Value lb, Value ub, SoftmaxState state,
         function_ref<SoftmaxState(ImplicitLocOpBuilder &, Value, SoftmaxState)>
             body) {
  auto loop = scf::ForOp::create(
      b, lb, ub, indexConst(b, 1), ValueRange{state.max, state.sum},
      [&](OpBuilder &nested, Location loc, Value iv, ValueRange carried) {
        ImplicitLocOpBuilder ib(loc, nested);
        SoftmaxState next = body(ib, iv, {carried[0], carried[1]});
        scf::YieldOp::create(ib, ValueRange{next.max, next.sum});
      });
  return {loop.getResult(0), loop.getResult(1)};
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

struct LowerSortedChunkAttention : OpRewritePattern<SortedChunkAttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SortedChunkAttentionOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto qkType = cast<RankedTensorType>(op.getQk().getType());
    auto permType = cast<RankedTensorType>(op.getPerm().getType());
    if (!qkType.hasStaticShape() || !permType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> s = qkType.getShape();
    int64_t bsz = s[0], heads = s[1], len = s[2], dim = s[3];
    int64_t rounds = permType.getDimSize(2);
    int64_t chunk = op.getChunkLen();
    int64_t numChunks = rounds * len / chunk;
    int64_t before = op.getChunksBefore(), after = op.getChunksAfter();
    bool dedup = op.getDuplicateCorrection();

    Value keys = toBuffer(b, normalizedKeys(b, op.getQk()));
    Value queries = toBuffer(b, op.getQk());
    Value values = toBuffer(b, op.getV());
    Value perm = toBuffer(b, op.getPerm());
    Value inverse = op.getInverse() ? toBuffer(b, op.getInverse()) : Value();
    Value mask = op.getMask() ? toBuffer(b, op.getMask()) : Value();
    auto outType = cast<RankedTensorType>(op.getOut().getType());
    auto lseType = cast<RankedTensorType>(op.getLse().getType());
    Value out = allocBuffer(b, outType);
    Value lse = allocBuffer(b, lseType);
    Type elementType = outType.getElementType();

    Value zero = indexConst(b, 0), one = indexConst(b, 1);
    scf::ParallelOp::create(
        b, ValueRange{zero, zero, zero},
        ValueRange{indexConst(b, bsz), indexConst(b, heads),
                   indexConst(b, numChunks)},
        ValueRange{one, one, one},
        [&](OpBuilder &nested, Location loc, ValueRange ivs) {
          ImplicitLocOpBuilder pb(loc, nested);
          Value batch = ivs[0], head = ivs[1], qc = ivs[2];
          AttentionOperands in{
              queries,          keys, values, mask, batch, head, dim,
              op.getCausal(),
              /*selfMask=*/true};
          Value acc = memref::AllocaOp::create(
              pb, MemRefType::get({dim}, pb.getF32Type()));
          auto positionAt = [&](ImplicitLocOpBuilder &ib, Value slot) {
            Value round = arith::DivUIOp::create(ib, slot, indexConst(ib, len));
            Value within =
                arith::RemUIOp::create(ib, slot, indexConst(ib, len));
            Value p = memref::LoadOp::create(
                ib, perm, ValueRange{batch, head, round, within});
            return std::make_pair(
                arith::IndexCastOp::create(ib, ib.getIndexType(), p), round);
          };
          // Number of (query copy, key copy) windows where i meets j.
          auto meetings = [&](ImplicitLocOpBuilder &ib, Value i,
                              Value j) -> Value {
            auto outer = scf::ForOp::create(
                ib, indexConst(ib, 0), indexConst(ib, rounds),
                indexConst(ib, 1), ValueRange{indexConst(ib, 0)},
                [&](OpBuilder &n1, Location l1, Value r1, ValueRange c1) {
                  ImplicitLocOpBuilder b1(l1, n1);
                  auto chunkOf = [&](ImplicitLocOpBuilder &bb, Value r,
                                     Value pos) {
                    Value slot = arith::IndexCastOp::create(
                        bb, bb.getIndexType(),
                        memref::LoadOp::create(
                            bb, inverse, ValueRange{batch, head, r, pos}));
                    Value global = arith::AddIOp::create(
                        bb, arith::MulIOp::create(bb, r, indexConst(bb, len)),
                        slot);
                    return arith::DivUIOp::create(bb, global,
                                                  indexConst(bb, chunk));
                  };
                  Value qChunk = chunkOf(b1, r1, i);
                  auto inner = scf::ForOp::create(
                      b1, indexConst(b1, 0), indexConst(b1, rounds),
                      indexConst(b1, 1), ValueRange{c1[0]},
                      [&](OpBuilder &n2, Location l2, Value r2, ValueRange c2) {
                        ImplicitLocOpBuilder b2(l2, n2);
                        Value kChunk = chunkOf(b2, r2, j);
                        Value diff = positiveMod(
                            b2, arith::SubIOp::create(b2, kChunk, qChunk),
                            numChunks);
                        Value ahead =
                            arith::CmpIOp::create(b2, arith::CmpIPredicate::ule,
                                                  diff, indexConst(b2, after));
                        Value behind = arith::CmpIOp::create(
                            b2, arith::CmpIPredicate::uge, diff,
                            indexConst(b2, numChunks - before));
                        Value meets = arith::OrIOp::create(b2, ahead, behind);
                        Value inc = arith::SelectOp::create(
                            b2, meets, indexConst(b2, 1), indexConst(b2, 0));
                        scf::YieldOp::create(
                            b2,
                            ValueRange{arith::AddIOp::create(b2, c2[0], inc)});
                      });
                  scf::YieldOp::create(b1, inner.getResult(0));
                });
            return outer.getResult(0);
          };

          Value first = arith::MulIOp::create(pb, qc, indexConst(pb, chunk));
          Value last = arith::AddIOp::create(pb, first, indexConst(pb, chunk));
          forLoop(pb, first, last, 1, [&](ImplicitLocOpBuilder &qb, Value t) {
            auto [i, qRound] = positionAt(qb, t);
            Value qWithin = arith::RemUIOp::create(qb, t, indexConst(qb, len));
            Value z = onlineSoftmax(
                qb, acc, dim,
                [&](ImplicitLocOpBuilder &kb, SoftmaxState state) {
                  return loopKeys(
                      kb, indexConst(kb, -before), indexConst(kb, after + 1),
                      state,
                      [&](ImplicitLocOpBuilder &wb, Value w, SoftmaxState st) {
                        Value kc = positiveMod(
                            wb, arith::AddIOp::create(wb, qc, w), numChunks);
                        Value kFirst = arith::MulIOp::create(
                            wb, kc, indexConst(wb, chunk));
                        Value kLast = arith::AddIOp::create(
                            wb, kFirst, indexConst(wb, chunk));
                        return loopKeys(wb, kFirst, kLast, st,
                                        [&](ImplicitLocOpBuilder &ub, Value u,
                                            SoftmaxState s2) {
                                          Value j = positionAt(ub, u).first;
                                          Value extra;
                                          if (dedup) {
                                            Value n = arith::UIToFPOp::create(
                                                ub, ub.getF32Type(),
                                                arith::IndexCastOp::create(
                                                    ub, ub.getI64Type(),
                                                    meetings(ub, i, j)));
                                            extra = arith::NegFOp::create(
                                                ub, math::LogOp::create(ub, n));
                                          }
                                          return attendKey(ub, in, acc, i, j,
                                                           extra, s2);
                                        });
                      });
                },
                [&](ImplicitLocOpBuilder &sb, Value d, Value value) {
                  memref::StoreOp::create(
                      sb, fromF32(sb, value, elementType), out,
                      ValueRange{batch, head, qRound, qWithin, d});
                });
            memref::StoreOp::create(qb, z, lse,
                                    ValueRange{batch, head, qRound, qWithin});
          });
          scf::ReduceOp::create(pb);
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
    int64_t bsz = s[0], heads = s[1], len = s[2], dim = s[3];
    int64_t chunk = op.getChunkLen(), numChunks = len / chunk;
    int64_t before = op.getChunksBefore(), after = op.getChunksAfter();
    MLIRContext *ctx = b.getContext();

    // Fold 1/sqrt(D) into the keys once.
    double scale = 1.0 / std::sqrt(static_cast<double>(dim));
    Value scaledKeys =
        generic(b, op.getK(), emptyTensor(b, s, b.getF32Type()),
                {identity(ctx, 4), identity(ctx, 4)}, 4, {},
                [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  linalg::YieldOp::create(
                      ib, ValueRange{arith::MulFOp::create(
                              ib, toF32(ib, a[0]), f32Const(ib, scale))});
                })[0];
    Value queries = toBuffer(b, op.getQ());
    Value keys = toBuffer(b, scaledKeys);
    Value values = toBuffer(b, op.getV());
    Value mask = op.getMask() ? toBuffer(b, op.getMask()) : Value();
    auto outType = cast<RankedTensorType>(op.getType());
    Value out = allocBuffer(b, outType);
    Type elementType = outType.getElementType();

    Value zero = indexConst(b, 0), one = indexConst(b, 1);
    scf::ParallelOp::create(
        b, ValueRange{zero, zero, zero},
        ValueRange{indexConst(b, bsz), indexConst(b, heads),
                   indexConst(b, numChunks)},
        ValueRange{one, one, one},
        [&](OpBuilder &nested, Location loc, ValueRange ivs) {
          ImplicitLocOpBuilder pb(loc, nested);
          Value batch = ivs[0], head = ivs[1], qc = ivs[2];
          AttentionOperands in{
              queries,           keys, values, mask, batch, head, dim,
              op.getCausal(),
              /*selfMask=*/false};
          Value acc = memref::AllocaOp::create(
              pb, MemRefType::get({dim}, pb.getF32Type()));
          // Chunks outside the sequence are absent: clamp the window.
          Value lo = arith::MaxSIOp::create(
              pb, arith::SubIOp::create(pb, qc, indexConst(pb, before)),
              indexConst(pb, 0));
          Value hi = arith::MinSIOp::create(
              pb, arith::AddIOp::create(pb, qc, indexConst(pb, after + 1)),
              indexConst(pb, numChunks));
          Value kFirst = arith::MulIOp::create(pb, lo, indexConst(pb, chunk));
          Value kLast = arith::MulIOp::create(pb, hi, indexConst(pb, chunk));
          Value first = arith::MulIOp::create(pb, qc, indexConst(pb, chunk));
          Value last = arith::AddIOp::create(pb, first, indexConst(pb, chunk));
          forLoop(pb, first, last, 1, [&](ImplicitLocOpBuilder &qb, Value i) {
            onlineSoftmax(
                qb, acc, dim,
                [&](ImplicitLocOpBuilder &kb, SoftmaxState state) {
                  return loopKeys(
                      kb, kFirst, kLast, state,
                      [&](ImplicitLocOpBuilder &ub, Value j, SoftmaxState st) {
                        return attendKey(ub, in, acc, i, j, Value(), st);
                      });
                },
                [&](ImplicitLocOpBuilder &sb, Value d, Value value) {
                  memref::StoreOp::create(sb, fromF32(sb, value, elementType),
                                          out, ValueRange{batch, head, i, d});
                });
          });
          scf::ReduceOp::create(pb);
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
