//===- AttentionGrad.cpp - Attention gradients → blocks of loops ----------===//
//
// The backward of LSH and local attention walks the forward's blocks again:
// by default one parallel iteration per (batch, head), serial over its query
// chunks, so the scatter-adds into the gradients of a head never race. With
// a block run (the GPU pipeline), iterations take runs of query chunks and
// add atomically: more parallel work, in an order that varies between runs.
// Each block recomputes its scores and softmax from scratch (a query's keys
// all lie in its window, so no stored statistic is needed for them), then
// small linalg.matmuls give dP = g·Vᵀ, dV = Pᵀ·g, dQ = dS·K and dK = dSᵀ·Q.
// Scratch is O(c·W·c + W·c·D) per worker: nothing of size L × L.
//
// LSH attention sums its rounds with weights w_r(i) = exp(z_r(i) − Z(i)).
// Writing g = w_r(i)·do(i), the round-weight term dz_r folds into one
// per-query constant: dS_ij = P_ij·(g_i·v_j − w_r(i)·(do(i)·out(i))), so the
// per-round outputs o_r are never needed, only the combined output.
//
//===----------------------------------------------------------------------===//

#include "AttentionBlocks.h"
#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Conversion/Passes.h"
#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
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

/// What the backward blocks read and accumulate into (memrefs).
struct GradOperands {
  Value queries, keys, values; ///< [B, H, L, D]; keys = queries if shared.
  Value resultGrad;            ///< [B, H, L, D] ∂loss/∂out.
  Value mask;                  ///< [B, L] i1, or null.
  /// LSH: the round weights [B, H, R, L] and do·out [B, H, L]. Local
  /// attention has one round: null, and do·o is taken from the block.
  Value weights, outDot;
  /// LSH, outlined: the per-round log-sum-exps [B, H, R, L] (a fused
  /// kernel's probabilities are exp(s − lse_r), unused by the loops).
  Value lse;
  Value dq, dk, dv; ///< [B, H, L, D] f32 accumulators, zeroed.
  int64_t chunk, windowChunks, chunksBefore, headDim, numChunks;
  bool causal, selfMask;
  /// Shared QK: keys are the query rows normalized (kKeyNormEps). Otherwise
  /// keys are scaled by `keyScale`.
  bool normalizeKeys;
  double keyScale;
  /// Vector width of the block code (see AttentionBlocks.h).
  int64_t lanes = 16;
  /// Names the parallel loop (a NameLoc), and so its GPU kernel.
  StringRef kernelName = "attention_grad";
  /// Most query chunks one parallel iteration walks; 0: all of a head's,
  /// adding into dq/dk/dv with plain stores. Otherwise iterations of one
  /// head run at once and add atomically.
  int64_t blockRun = 0;
};

/// Where the blocks' queries and keys are; chunk indices may be unwrapped.
struct GradCallbacks {
  /// Sequence position of query t of query chunk qc, and its round (null
  /// without rounds).
  function_ref<std::pair<Value, Value>(ImplicitLocOpBuilder &, Value, Value)>
      query;
  /// Sequence position of key u of key chunk kc, and whether it exists
  /// (null: always).
  function_ref<std::pair<Value, Value>(ImplicitLocOpBuilder &, Value, Value)>
      key;
  /// Extra score term for (query position, key position), or null.
  function_ref<Value(ImplicitLocOpBuilder &, Value, Value)> extraScore;
};

struct GradScratch {
  Value q, g;             ///< [c, D] query rows, scaled output gradients.
  Value qpos, gDot;       ///< [c] positions, w_r·(do·out) per query.
  Value k, v;             ///< [W·c, D] keys and values as rows.
  Value kt, vt;           ///< [D, W·c] keys and values transposed.
  Value invNorm;          ///< [W·c] key normalization.
  Value kpos, kbias;      ///< [W·c] key positions (−1: absent), score bias.
  Value p, ds;            ///< [c, W·c] probabilities, dP then dS.
  Value pt, dst;          ///< [W·c, c] their transposes.
  Value dqBlock;          ///< [c, D]
  Value dkBlock, dvBlock; ///< [W·c, D]
};

GradScratch allocGradScratch(ImplicitLocOpBuilder &b, const GradOperands &in) {
  int64_t c = in.chunk, w = in.windowChunks * in.chunk, d = in.headDim;
  Type f32 = b.getF32Type(), i32Type = b.getI32Type();
  GradScratch sc;
  sc.q = scratch(b, {c, d}, f32);
  sc.g = scratch(b, {c, d}, f32);
  sc.qpos = scratch(b, {c}, i32Type);
  sc.gDot = scratch(b, {c}, f32);
  sc.k = scratch(b, {w, d}, f32);
  sc.v = scratch(b, {w, d}, f32);
  sc.kt = scratch(b, {d, w}, f32);
  sc.vt = scratch(b, {d, w}, f32);
  sc.invNorm = scratch(b, {w}, f32);
  sc.kpos = scratch(b, {w}, i32Type);
  sc.kbias = scratch(b, {w}, f32);
  sc.p = scratch(b, {c, w}, f32);
  sc.ds = scratch(b, {c, w}, f32);
  sc.pt = scratch(b, {w, c}, f32);
  sc.dst = scratch(b, {w, c}, f32);
  sc.dqBlock = scratch(b, {c, d}, f32);
  sc.dkBlock = scratch(b, {w, d}, f32);
  sc.dvBlock = scratch(b, {w, d}, f32);
  return sc;
}

Value loadIndex(ImplicitLocOpBuilder &b, Value buffer, ValueRange at) {
  return arith::IndexCastOp::create(b, b.getIndexType(),
                                    memref::LoadOp::create(b, buffer, at));
}

/// `rows[row, :] *= scale` (f32, `lanes` at a time when D allows).
void scaleRow(ImplicitLocOpBuilder &b, Value rows, Value row, int64_t dim,
              Value scale, int64_t lanes) {
  int64_t step = dim % lanes == 0 ? lanes : 1;
  forLoop(b, indexConst(b, 0), indexConst(b, dim), step,
          [&](ImplicitLocOpBuilder &lb, Value e) {
            if (step == 1) {
              Value x = memref::LoadOp::create(lb, rows, ValueRange{row, e});
              memref::StoreOp::create(lb, arith::MulFOp::create(lb, x, scale),
                                      rows, ValueRange{row, e});
              return;
            }
            auto vec = VectorType::get({lanes}, lb.getF32Type());
            Value x = vector::LoadOp::create(lb, vec, rows, ValueRange{row, e});
            x = arith::MulFOp::create(
                lb, x, vector::BroadcastOp::create(lb, vec, scale));
            vector::StoreOp::create(lb, x, rows, ValueRange{row, e});
          });
}

/// `c = a · b` on scratch memrefs (a fresh accumulator).
void blockMatmul(ImplicitLocOpBuilder &b, Value lhs, Value rhs, Value out) {
  linalg::FillOp::create(b, ValueRange{f32Const(b, 0.0)}, ValueRange{out});
  linalg::MatmulOp::create(b, ValueRange{lhs, rhs}, ValueRange{out});
}

/// Gathers the W·c keys of the window of query chunk `qc`: positions,
/// bias, keys as rows and transposed, values transposed.
void gatherWindow(ImplicitLocOpBuilder &b, const GradOperands &in,
                  const GradCallbacks &cb, const GradScratch &sc, Value batch,
                  Value head, Value qc) {
  int64_t c = in.chunk, d = in.headDim;
  Value zero = indexConst(b, 0);
  Value first = arith::SubIOp::create(b, qc, indexConst(b, in.chunksBefore));
  forLoop(
      b, zero, indexConst(b, in.windowChunks), 1,
      [&](ImplicitLocOpBuilder &wb, Value slot) {
        Value kc = arith::AddIOp::create(wb, first, slot);
        Value col0 = arith::MulIOp::create(wb, slot, indexConst(wb, c));
        forLoop(
            wb, zero, indexConst(wb, c), 1,
            [&](ImplicitLocOpBuilder &ib, Value u) {
              auto [j, exists] = cb.key(ib, kc, u);
              Value col = arith::AddIOp::create(ib, col0, u);
              Value safe =
                  exists ? arith::SelectOp::create(ib, exists, j, zero) : j;
              Value bias = f32Const(ib, 0.0);
              if (in.mask)
                bias = arith::SelectOp::create(
                    ib,
                    memref::LoadOp::create(ib, in.mask,
                                           ValueRange{batch, safe}),
                    bias, f32Const(ib, kMaskedScore));
              Value pos = i32(ib, safe);
              if (exists) {
                bias = arith::SelectOp::create(
                    ib, exists, bias,
                    f32Const(ib, -std::numeric_limits<double>::infinity()));
                pos = arith::SelectOp::create(
                    ib, exists, pos,
                    arith::ConstantOp::create(ib, ib.getI32IntegerAttr(-1)));
              }
              memref::StoreOp::create(ib, bias, sc.kbias, col);
              memref::StoreOp::create(ib, pos, sc.kpos, col);
              copyRow(ib, in.keys, ValueRange{batch, head, safe}, sc.k,
                      ValueRange{col}, d, exists, in.lanes);
              if (in.normalizeKeys)
                storeInverseNorm(ib, sc.k, col, sc.invNorm, d, in.lanes);
              Value scale =
                  in.normalizeKeys
                      ? Value(memref::LoadOp::create(ib, sc.invNorm, col))
                      : f32Const(ib, in.keyScale);
              scaleRow(ib, sc.k, col, d, scale, in.lanes);
              copyRow(ib, in.values, ValueRange{batch, head, safe}, sc.v,
                      ValueRange{col}, d, exists, in.lanes);
            });
      });
  transposeBlock(b, sc.k, sc.kt, in.lanes);
  transposeBlock(b, sc.v, sc.vt, in.lanes);
}

/// Gathers the queries of chunk `qc`: rows, positions, the weighted output
/// gradients g = w_r·do and, with rounds, w_r·(do·out).
void gatherQueries(ImplicitLocOpBuilder &b, const GradOperands &in,
                   const GradCallbacks &cb, const GradScratch &sc, Value batch,
                   Value head, Value qc) {
  Value zero = indexConst(b, 0);
  forLoop(b, zero, indexConst(b, in.chunk), 1,
          [&](ImplicitLocOpBuilder &ib, Value t) {
            auto [i, round] = cb.query(ib, qc, t);
            memref::StoreOp::create(ib, i32(ib, i), sc.qpos, t);
            copyRow(ib, in.queries, ValueRange{batch, head, i}, sc.q,
                    ValueRange{t}, in.headDim, Value(), in.lanes);
            Value w = f32Const(ib, 1.0);
            if (in.weights) {
              w = memref::LoadOp::create(ib, in.weights,
                                         ValueRange{batch, head, round, i});
              memref::StoreOp::create(
                  ib,
                  arith::MulFOp::create(
                      ib, w,
                      memref::LoadOp::create(ib, in.outDot,
                                             ValueRange{batch, head, i})),
                  sc.gDot, t);
            }
            copyRow(ib, in.resultGrad, ValueRange{batch, head, i}, sc.g,
                    ValueRange{t}, in.headDim, Value(), in.lanes);
            if (in.weights)
              scaleRow(ib, sc.g, t, in.headDim, w, in.lanes);
          });
}

/// P = softmax(mask(Q·Kᵀ)) per row, recomputed exactly as the forward does:
/// a vector of keys at a time, or one at a time when the width does not allow
/// it or a pair term (duplicate correction) is added.
void recomputeProbabilities(ImplicitLocOpBuilder &b, const GradOperands &in,
                            const GradCallbacks &cb, const GradScratch &sc) {
  int64_t w = in.windowChunks * in.chunk;
  blockMatmul(b, sc.q, sc.kt, sc.p);
  int64_t lanes = (w % in.lanes == 0 && !cb.extraScore) ? in.lanes : 1;
  auto vecF = VectorType::get({lanes}, b.getF32Type());
  auto vecI = VectorType::get({lanes}, b.getI32Type());
  auto load = [&](ImplicitLocOpBuilder &lb, Value buf, ValueRange at,
                  VectorType type) -> Value {
    if (lanes == 1)
      return memref::LoadOp::create(lb, buf, at);
    return vector::LoadOp::create(lb, type, buf, at);
  };
  auto store = [&](ImplicitLocOpBuilder &lb, Value x, Value buf,
                   ValueRange at) {
    if (lanes == 1)
      memref::StoreOp::create(lb, x, buf, at);
    else
      vector::StoreOp::create(lb, x, buf, at);
  };
  auto splat = [&](ImplicitLocOpBuilder &lb, Value scalar) -> Value {
    if (lanes == 1)
      return scalar;
    return vector::BroadcastOp::create(
        lb, VectorType::get({lanes}, scalar.getType()), scalar);
  };
  auto reduce = [&](ImplicitLocOpBuilder &lb, vector::CombiningKind kind,
                    Value x) -> Value {
    if (lanes == 1)
      return x;
    return vector::ReductionOp::create(lb, kind, x,
                                       kind == vector::CombiningKind::MAXIMUMF
                                           ? maxFlags()
                                           : arith::FastMathFlags::reassoc);
  };
  Value zero = indexConst(b, 0), width = indexConst(b, w);
  Value step = indexConst(b, lanes);
  forLoop(
      b, zero, indexConst(b, in.chunk), 1,
      [&](ImplicitLocOpBuilder &ib, Value t) {
        Value qi = memref::LoadOp::create(ib, sc.qpos, t);
        Value qIndex = arith::IndexCastOp::create(ib, ib.getIndexType(), qi);
        Value qiv = splat(ib, qi);
        Value masked = splat(ib, f32Const(ib, kMaskedScore));
        Value self = splat(ib, f32Const(ib, kSelfScore));
        auto maxLoop = scf::ForOp::create(
            ib, zero, width, step,
            ValueRange{splat(
                ib, f32Const(ib, -std::numeric_limits<double>::infinity()))},
            [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
              ImplicitLocOpBuilder lb(loc, nested);
              Value pos = load(lb, sc.kpos, ValueRange{u}, vecI);
              Value x = arith::AddFOp::create(
                  lb, load(lb, sc.p, ValueRange{t, u}, vecF),
                  load(lb, sc.kbias, ValueRange{u}, vecF));
              if (cb.extraScore) {
                Value j = arith::IndexCastOp::create(
                    lb, lb.getIndexType(),
                    arith::MaxSIOp::create(lb, pos,
                                           arith::ConstantOp::create(
                                               lb, lb.getI32IntegerAttr(0))));
                x = arith::AddFOp::create(lb, x, cb.extraScore(lb, qIndex, j));
              }
              if (in.causal)
                x = arith::SelectOp::create(
                    lb,
                    arith::CmpIOp::create(lb, arith::CmpIPredicate::sgt, pos,
                                          qiv),
                    arith::AddFOp::create(lb, x, masked), x);
              if (in.selfMask)
                x = arith::SelectOp::create(
                    lb,
                    arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, pos,
                                          qiv),
                    arith::AddFOp::create(lb, x, self), x);
              store(lb, x, sc.p, ValueRange{t, u});
              scf::YieldOp::create(lb, ValueRange{fastMax(lb, acc[0], x)});
            });
        Value mv = splat(ib, reduce(ib, vector::CombiningKind::MAXIMUMF,
                                    maxLoop.getResult(0)));
        auto sumLoop = scf::ForOp::create(
            ib, zero, width, step, ValueRange{splat(ib, f32Const(ib, 0.0))},
            [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
              ImplicitLocOpBuilder lb(loc, nested);
              Value e = math::ExpOp::create(
                  lb, arith::SubFOp::create(
                          lb, load(lb, sc.p, ValueRange{t, u}, vecF), mv));
              store(lb, e, sc.p, ValueRange{t, u});
              scf::YieldOp::create(
                  lb, ValueRange{arith::AddFOp::create(lb, acc[0], e)});
            });
        Value sum =
            reduce(ib, vector::CombiningKind::ADD, sumLoop.getResult(0));
        Value inv =
            splat(ib, arith::DivFOp::create(ib, f32Const(ib, 1.0), sum));
        forLoop(ib, zero, width, lanes, [&](ImplicitLocOpBuilder &lb, Value u) {
          Value p = load(lb, sc.p, ValueRange{t, u}, vecF);
          store(lb, arith::MulFOp::create(lb, p, inv), sc.p, ValueRange{t, u});
        });
      });
}

/// dS = P ⊙ (dP − δ) in place of dP, with δ = w_r·(do·out) (LSH) or the
/// row's Σ P ⊙ dP (= do·o of the single round, local attention).
void scoreGradients(ImplicitLocOpBuilder &b, const GradOperands &in,
                    const GradScratch &sc) {
  int64_t w = in.windowChunks * in.chunk;
  int64_t lanes = w % in.lanes == 0 ? in.lanes : 1;
  auto vec = VectorType::get({lanes}, b.getF32Type());
  auto load = [&](ImplicitLocOpBuilder &lb, Value buf, Value t,
                  Value u) -> Value {
    if (lanes == 1)
      return memref::LoadOp::create(lb, buf, ValueRange{t, u});
    return vector::LoadOp::create(lb, vec, buf, ValueRange{t, u});
  };
  Value zero = indexConst(b, 0), width = indexConst(b, w);
  forLoop(
      b, zero, indexConst(b, in.chunk), 1,
      [&](ImplicitLocOpBuilder &ib, Value t) {
        Value delta;
        if (in.weights) {
          delta = memref::LoadOp::create(ib, sc.gDot, t);
        } else {
          Value init = f32Const(ib, 0.0);
          if (lanes > 1)
            init = vector::BroadcastOp::create(ib, vec, init);
          auto dot = scf::ForOp::create(
              ib, zero, width, indexConst(ib, lanes), ValueRange{init},
              [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
                ImplicitLocOpBuilder lb(loc, nested);
                Value pd = arith::MulFOp::create(lb, load(lb, sc.p, t, u),
                                                 load(lb, sc.ds, t, u));
                scf::YieldOp::create(
                    lb, ValueRange{arith::AddFOp::create(lb, acc[0], pd)});
              });
          delta = dot.getResult(0);
          if (lanes > 1)
            delta = vector::ReductionOp::create(ib, vector::CombiningKind::ADD,
                                                delta,
                                                arith::FastMathFlags::reassoc);
        }
        Value deltaV = lanes > 1
                           ? Value(vector::BroadcastOp::create(ib, vec, delta))
                           : delta;
        forLoop(ib, zero, width, lanes, [&](ImplicitLocOpBuilder &lb, Value u) {
          Value ds = arith::MulFOp::create(
              lb, load(lb, sc.p, t, u),
              arith::SubFOp::create(lb, load(lb, sc.ds, t, u), deltaV));
          if (lanes == 1)
            memref::StoreOp::create(lb, ds, sc.ds, ValueRange{t, u});
          else
            vector::StoreOp::create(lb, ds, sc.ds, ValueRange{t, u});
        });
      });
}

/// `acc[batch, head, row(i), :] += scale · block[i, :]` for the rows of a
/// block whose position is not −1; element by element with atomic adds
/// when other iterations may add to the same rows.
void scatterAdd(ImplicitLocOpBuilder &b, Value block, Value positions,
                int64_t rows, int64_t dim, Value acc, Value batch, Value head,
                double scale, int64_t lanes, bool atomic) {
  Value zero = indexConst(b, 0);
  forLoop(
      b, zero, indexConst(b, rows), 1, [&](ImplicitLocOpBuilder &ib, Value r) {
        Value pos = memref::LoadOp::create(ib, positions, r);
        Value present = arith::CmpIOp::create(
            ib, arith::CmpIPredicate::sge, pos,
            arith::ConstantOp::create(ib, ib.getI32IntegerAttr(0)));
        scf::IfOp::create(ib, present, [&](OpBuilder &nested, Location loc) {
          ImplicitLocOpBuilder tb(loc, nested);
          Value j = arith::IndexCastOp::create(tb, tb.getIndexType(), pos);
          if (!atomic) {
            addRow(tb, block, ValueRange{r}, acc, ValueRange{batch, head, j},
                   dim, scale, lanes);
          } else {
            forLoop(
                tb, zero, indexConst(tb, dim), 1,
                [&](ImplicitLocOpBuilder &lb, Value e) {
                  Value x = memref::LoadOp::create(lb, block, ValueRange{r, e});
                  if (scale != 1.0)
                    x = arith::MulFOp::create(lb, x, f32Const(lb, scale));
                  memref::AtomicRMWOp::create(lb, arith::AtomicRMWKind::addf, x,
                                              acc,
                                              ValueRange{batch, head, j, e});
                });
          }
          scf::YieldOp::create(tb);
        });
      });
}

/// The backward of every block: parallel over (batch, head) and, with a
/// block run, over runs of query chunks; serial over the chunks of a run.
void forEachGradBlock(ImplicitLocOpBuilder &b, const GradOperands &in,
                      const GradCallbacks &cb, Value &batchIv, Value &headIv,
                      int64_t batch, int64_t heads) {
  int64_t c = in.chunk, w = in.windowChunks * in.chunk, d = in.headDim;
  bool atomic = in.blockRun > 0;
  int64_t group = std::max<int64_t>(in.numChunks, 1);
  if (atomic)
    for (group = std::clamp<int64_t>(in.blockRun, 1, group);
         in.numChunks % group;)
      --group;
  Value zero = indexConst(b, 0), one = indexConst(b, 1);
  SmallVector<Value> lower = {zero, zero}, steps = {one, one};
  SmallVector<Value> upper = {indexConst(b, batch), indexConst(b, heads)};
  if (atomic) {
    lower.push_back(zero);
    steps.push_back(one);
    upper.push_back(indexConst(b, in.numChunks / group));
  }
  scf::ParallelOp::create(
      b, NameLoc::get(b.getStringAttr(in.kernelName), b.getLoc()), lower, upper,
      steps, [&](OpBuilder &nested, Location loc, ValueRange ivs) {
        ImplicitLocOpBuilder pb(loc, nested);
        batchIv = ivs[0];
        headIv = ivs[1];
        Value first =
            atomic ? arith::MulIOp::create(pb, ivs[2], indexConst(pb, group))
                         .getResult()
                   : zero;
        GradScratch sc = allocGradScratch(pb, in);
        forLoop(pb, zero, indexConst(pb, group), 1,
                [&](ImplicitLocOpBuilder &ib, Value i) {
                  Value qc = arith::AddIOp::create(ib, first, i);
                  gatherWindow(ib, in, cb, sc, batchIv, headIv, qc);
                  gatherQueries(ib, in, cb, sc, batchIv, headIv, qc);
                  recomputeProbabilities(ib, in, cb, sc);
                  blockMatmul(ib, sc.g, sc.vt, sc.ds); // dP
                  scoreGradients(ib, in, sc);
                  transposeBlock(ib, sc.p, sc.pt, in.lanes);
                  transposeBlock(ib, sc.ds, sc.dst, in.lanes);
                  blockMatmul(ib, sc.pt, sc.g, sc.dvBlock);
                  blockMatmul(ib, sc.dst, sc.q, sc.dkBlock);
                  blockMatmul(ib, sc.ds, sc.k, sc.dqBlock);
                  scatterAdd(ib, sc.dqBlock, sc.qpos, c, d, in.dq, batchIv,
                             headIv, 1.0, in.lanes, atomic);
                  // Local attention's keys were scaled by 1/sqrt(D) before
                  // the dot product; LSH normalization is undone later.
                  scatterAdd(ib, sc.dkBlock, sc.kpos, w, d, in.dk, batchIv,
                             headIv, in.normalizeKeys ? 1.0 : in.keyScale,
                             in.lanes, atomic);
                  scatterAdd(ib, sc.dvBlock, sc.kpos, w, d, in.dv, batchIv,
                             headIv, 1.0, in.lanes, atomic);
                });
        scf::ReduceOp::create(pb);
      });
}

/// Σ_e a[…, e] · b[…, e] over the last dimension of two [B, H, L, D]
/// tensors, in f32: [B, H, L].
Value rowDot(ImplicitLocOpBuilder &b, Value x, Value y) {
  MLIRContext *ctx = b.getContext();
  ArrayRef<int64_t> s = cast<RankedTensorType>(x.getType()).getShape();
  return generic(
      b, ValueRange{x, y}, filledTensor(b, s.drop_back(), 0.0),
      {identity(ctx, 4), identity(ctx, 4), projection(ctx, 4, {0, 1, 2})}, 4,
      {3}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value p = arith::MulFOp::create(ib, toF32(ib, a[0]), toF32(ib, a[1]));
        linalg::YieldOp::create(ib,
                                ValueRange{arith::AddFOp::create(ib, a[2], p)});
      })[0];
}

/// dx = dq + a·dk − a·x·(x·dk)/(D·(mean(x²)+ε)), a = (mean(x²)+ε)^(−½)/√D:
/// the key side of shared QK back through the key normalization.
Value sharedQkGradient(ImplicitLocOpBuilder &b, Value x, Value dq, Value dk) {
  MLIRContext *ctx = b.getContext();
  ArrayRef<int64_t> s = cast<RankedTensorType>(x.getType()).getShape();
  double dim = static_cast<double>(s[3]);
  Value sumSq = rowDot(b, x, x);
  Value xDotDk = rowDot(b, x, dk);
  AffineMap row = projection(ctx, 4, {0, 1, 2});
  return generic(
      b, ValueRange{x, dq, dk, sumSq, xDotDk},
      emptyTensor(b, s, b.getF32Type()),
      {identity(ctx, 4), identity(ctx, 4), identity(ctx, 4), row, row,
       identity(ctx, 4)},
      4, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value meanSq = arith::AddFOp::create(
            ib, arith::MulFOp::create(ib, a[3], f32Const(ib, 1.0 / dim)),
            f32Const(ib, kKeyNormEps));
        Value scale =
            arith::MulFOp::create(ib, math::RsqrtOp::create(ib, meanSq),
                                  f32Const(ib, 1.0 / std::sqrt(dim)));
        // a·(dk − x·(x·dk)/(D·(mean(x²)+ε)))
        Value coeff = arith::DivFOp::create(
            ib, a[4], arith::MulFOp::create(ib, meanSq, f32Const(ib, dim)));
        Value inner = arith::SubFOp::create(
            ib, a[2], arith::MulFOp::create(ib, toF32(ib, a[0]), coeff));
        Value keySide = arith::MulFOp::create(ib, scale, inner);
        linalg::YieldOp::create(
            ib, ValueRange{arith::AddFOp::create(ib, a[1], keySide)});
      })[0];
}

struct LowerLshAttentionGrad : OpRewritePattern<LshAttentionGradOp> {
  LowerLshAttentionGrad(MLIRContext *context,
                        const AttentionLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}
  AttentionLoweringOptions options;
  LogicalResult matchAndRewrite(LshAttentionGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto qkType = cast<RankedTensorType>(op.getQk().getType());
    auto lseType = cast<RankedTensorType>(op.getLse().getType());
    if (!qkType.hasStaticShape() || !lseType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> shape = qkType.getShape();
    int64_t len = shape[2], dim = shape[3];
    int64_t rounds = lseType.getDimSize(2);
    int64_t chunk = op.getChunkLen();
    int64_t numChunks = rounds * len / chunk;
    int64_t before = op.getChunksBefore(), after = op.getChunksAfter();

    // The forward's sort, rebuilt from its buckets (never re-hashed).
    auto indexType = cast<RankedTensorType>(op.getBuckets().getType());
    auto sort = BucketSortOp::create(b, indexType, indexType, op.getBuckets(),
                                     op.getNumBucketsTotal());
    Value perm = toBuffer(b, sort.getPerm());
    Value inverse =
        op.getDuplicateCorrection() ? toBuffer(b, sort.getInverse()) : Value();

    Value queries = headsBuffer(b, op.getQk());
    GradOperands in;
    in.queries = in.keys = queries;
    in.values = headsBuffer(b, op.getV());
    in.resultGrad = headsBuffer(b, op.getResultGrad());
    in.mask = op.getMask() ? toBuffer(b, op.getMask()) : Value();
    in.weights = toBuffer(b, roundWeights(b, op.getLse()));
    in.outDot = toBuffer(b, rowDot(b, op.getResultGrad(), op.getOut()));
    in.dq = zeroBuffer(b, shape);
    in.dk = zeroBuffer(b, shape);
    in.dv = zeroBuffer(b, shape);
    in.chunk = chunk;
    in.windowChunks = before + 1 + after;
    in.chunksBefore = before;
    in.headDim = dim;
    in.numChunks = numChunks;
    in.causal = op.getCausal();
    in.selfMask = true;
    in.normalizeKeys = true;
    in.keyScale = 1.0;
    in.lanes = options.vectorLanes;
    in.blockRun = options.gradBlockRun;
    in.kernelName = "lsh_attention_grad";

    Value batchIv, headIv;
    auto positionAt = [&](ImplicitLocOpBuilder &ib, Value slot) {
      Value round = arith::DivUIOp::create(ib, slot, indexConst(ib, len));
      Value within = arith::RemUIOp::create(ib, slot, indexConst(ib, len));
      Value pos =
          loadIndex(ib, perm, ValueRange{batchIv, headIv, round, within});
      return std::make_pair(pos, round);
    };
    auto slotOf = [&](ImplicitLocOpBuilder &ib, Value chunkIndex, Value t) {
      return arith::AddIOp::create(
                 ib,
                 arith::MulIOp::create(ib, chunkIndex, indexConst(ib, chunk)),
                 t)
          .getResult();
    };
    auto queryFn = [&](ImplicitLocOpBuilder &ib, Value qc, Value t) {
      return positionAt(ib, slotOf(ib, qc, t));
    };
    // Chunks wrap around the sorted sequence, as in the forward.
    auto keyFn = [&](ImplicitLocOpBuilder &ib, Value kc, Value u) {
      Value slot = slotOf(ib, positiveMod(ib, kc, numChunks), u);
      return std::make_pair(positionAt(ib, slot).first, Value());
    };
    DuplicateCount counter{inverse,   rounds, len,  chunk,
                           numChunks, before, after};
    auto duplicates = [&](ImplicitLocOpBuilder &ib, Value i, Value j) {
      return counter.score(ib, batchIv, headIv, i, j);
    };
    // function_refs must point at named lambdas that outlive the call.
    GradCallbacks cb;
    cb.query = queryFn;
    cb.key = keyFn;
    if (op.getDuplicateCorrection())
      cb.extraScore = duplicates;
    if (!options.outlineAttention || op.getDuplicateCorrection()) {
      forEachGradBlock(b, in, cb, batchIv, headIv, shape[0], shape[1]);
    } else {
      // The blocks in a private function of the buffers, called here, for
      // a target pass to replace (the callbacks read its arguments).
      SmallVector<Value> args = {in.queries, in.values, perm};
      if (in.mask)
        args.push_back(in.mask);
      in.lse = toBuffer(b, op.getLse());
      args.append(
          {in.resultGrad, in.lse, in.weights, in.outDot, in.dq, in.dk, in.dv});
      SmallVector<NamedAttribute> params =
          windowParams(rewriter, chunk, before, after, op.getCausal());
      params.append(
          {rewriter.getNamedAttr("self_score",
                                 rewriter.getF64FloatAttr(kSelfScore)),
           rewriter.getNamedAttr("key_norm_eps",
                                 rewriter.getF64FloatAttr(kKeyNormEps))});
      GradOperands outer = in;
      outlineBlocks(rewriter, b, op, "lsh_attention_grad", args,
                    kLshAttentionGradBlockAttrName, params,
                    [&](ImplicitLocOpBuilder &fb, ValueRange p) {
                      size_t n = 0;
                      in.queries = in.keys = p[n++];
                      in.values = p[n++];
                      perm = p[n++];
                      if (in.mask)
                        in.mask = p[n++];
                      for (Value *arg : {&in.resultGrad, &in.lse, &in.weights,
                                         &in.outDot, &in.dq, &in.dk, &in.dv})
                        *arg = p[n++];
                      forEachGradBlock(fb, in, cb, batchIv, headIv, shape[0],
                                       shape[1]);
                    });
      in = outer;
    }

    Value qkGrad =
        sharedQkGradient(b, op.getQk(), toTensor(b, in.dq), toTensor(b, in.dk));
    rewriter.replaceOp(op, {qkGrad, toTensor(b, in.dv)});
    return success();
  }
};

struct LowerLocalAttentionGrad : OpRewritePattern<LocalAttentionGradOp> {
  LowerLocalAttentionGrad(MLIRContext *context,
                          const AttentionLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}
  AttentionLoweringOptions options;
  LogicalResult matchAndRewrite(LocalAttentionGradOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getQ().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> shape = type.getShape();
    int64_t chunk = op.getChunkLen(), numChunks = shape[2] / chunk;
    int64_t before = op.getChunksBefore(), after = op.getChunksAfter();

    GradOperands in;
    in.queries = headsBuffer(b, op.getQ());
    in.keys = headsBuffer(b, op.getK());
    in.values = headsBuffer(b, op.getV());
    in.resultGrad = headsBuffer(b, op.getResultGrad());
    in.mask = op.getMask() ? toBuffer(b, op.getMask()) : Value();
    in.dq = zeroBuffer(b, shape);
    in.dk = zeroBuffer(b, shape);
    in.dv = zeroBuffer(b, shape);
    in.chunk = chunk;
    in.windowChunks = before + 1 + after;
    in.chunksBefore = before;
    in.headDim = shape[3];
    in.numChunks = numChunks;
    in.causal = op.getCausal();
    in.selfMask = false;
    in.normalizeKeys = false;
    in.keyScale = 1.0 / std::sqrt(static_cast<double>(shape[3]));
    in.lanes = options.vectorLanes;
    in.blockRun = options.gradBlockRun;
    in.kernelName = "local_attention_grad";

    Value batchIv, headIv;
    auto queryFn = [&](ImplicitLocOpBuilder &ib, Value qc, Value t) {
      Value i = arith::AddIOp::create(
          ib, arith::MulIOp::create(ib, qc, indexConst(ib, chunk)), t);
      return std::make_pair(Value(i), Value());
    };
    // Keys of chunks outside the sequence do not exist (no wrap-around).
    auto keyFn = [&](ImplicitLocOpBuilder &ib, Value kc, Value u) {
      return localKeyPosition(ib, kc, u, chunk, numChunks);
    };
    GradCallbacks cb;
    cb.query = queryFn;
    cb.key = keyFn;
    if (!options.outlineAttention) {
      forEachGradBlock(b, in, cb, batchIv, headIv, shape[0], shape[1]);
    } else {
      // Outlined for a target pass, with room for the forward's outputs
      // and log-sum-exps, which a fused kernel needs (the loops do not).
      Type f32 = b.getF32Type();
      Value out = allocBuffer(b, RankedTensorType::get(shape, f32));
      Value lse = allocBuffer(b, RankedTensorType::get(shape.drop_back(), f32));
      SmallVector<Value> args = {in.queries, in.keys, in.values};
      if (in.mask)
        args.push_back(in.mask);
      args.append({in.resultGrad, out, lse, in.dq, in.dk, in.dv});
      GradOperands outer = in;
      outlineBlocks(
          rewriter, b, op, "local_attention_grad", args,
          kLocalAttentionGradBlockAttrName,
          windowParams(rewriter, chunk, before, after, op.getCausal()),
          [&](ImplicitLocOpBuilder &fb, ValueRange p) {
            size_t n = 0;
            for (Value *arg : {&in.queries, &in.keys, &in.values})
              *arg = p[n++];
            if (in.mask)
              in.mask = p[n++];
            in.resultGrad = p[n++];
            n += 2; // the fused kernel's statistics
            for (Value *arg : {&in.dq, &in.dk, &in.dv})
              *arg = p[n++];
            forEachGradBlock(fb, in, cb, batchIv, headIv, shape[0], shape[1]);
          });
      in = outer;
    }
    rewriter.replaceOp(
        op, {toTensor(b, in.dq), toTensor(b, in.dk), toTensor(b, in.dv)});
    return success();
  }
};

} // namespace

void reformer::populateAttentionGradLoweringPatterns(
    RewritePatternSet &patterns, const AttentionLoweringOptions &options) {
  patterns.add<LowerLshAttentionGrad, LowerLocalAttentionGrad>(
      patterns.getContext(), options);
}
