//===- Attention.cpp - sorted_chunk_attention, local_attention → loops ----===//
//
// Both attentions are a parallel loop over (batch, head, run of query
// chunks). Each block gathers its c queries and keeps the W·c keys/values
// of its window in small contiguous scratch buffers (a ring: the next block
// gathers one new key chunk), computes the c × W·c scores with
// one linalg.matmul, applies the masks and a row softmax with 16-lane
// vector code, and takes P·V with a second linalg.matmul (both matmuls
// become register-blocked kernels, rf-vectorize-matmuls). Scratch is
// O(c·W·c + W·c·D) per worker: nothing of size L × L, whatever L.
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

constexpr int64_t kCacheLineBytes = 64;
/// Query rows per register block of the fused score kernel: 8 rows × 2
/// vectors of accumulators fit AVX-512's 32 registers with the row maxima.
constexpr int64_t kScoreRows = 8;

/// What the blocks read (memrefs) and how they are shaped. A block is one
/// chunk of queries against a window of `windowChunks` key chunks.
struct BlockOperands {
  Value queries, keys, values; ///< [B, H, L, D].
  Value mask;                  ///< [B, L] i1, or null.
  int64_t chunk, windowChunks, chunksBefore, headDim;
  bool causal, selfMask;
  /// Shared QK: `keys` are the raw query rows, normalized while gathered.
  /// Otherwise `keys` are used as they are (already scaled).
  bool normalizeKeys;
  /// Most consecutive query chunks one parallel iteration walks (sharing
  /// its gathered key chunks); fewer give more parallel iterations.
  int64_t maxRun = 16;
  /// Vector width of the block code (see AttentionBlocks.h).
  int64_t lanes = 16;
  /// Names the parallel loop (a NameLoc): the GPU kernel it becomes is
  /// named after it.
  StringRef kernelName = "attention";
};

/// Where the blocks' queries and keys are, and where results go. Chunk
/// indices passed to `keyPosition` are unwrapped: they may lie before the
/// first or past the last chunk.
struct BlockCallbacks {
  /// Sequence position of query t of query chunk qc.
  function_ref<Value(ImplicitLocOpBuilder &, Value, Value)> queryPosition;
  /// Sequence position of key u of key chunk kc, and whether it exists
  /// (null: always).
  function_ref<std::pair<Value, Value>(ImplicitLocOpBuilder &, Value, Value)>
      keyPosition;
  /// Extra score term for (query position, key position), or null.
  function_ref<Value(ImplicitLocOpBuilder &, Value, Value)> extraScore;
  /// Where query t of chunk qc (at sequence position `qi`) writes: the
  /// output row's buffer and indices (all but the last, D), and its
  /// log-sum-exp element.
  function_ref<std::pair<Value, SmallVector<Value>>(ImplicitLocOpBuilder &,
                                                    Value, Value, Value)>
      outputRow;
  function_ref<std::pair<Value, SmallVector<Value>>(ImplicitLocOpBuilder &,
                                                    Value, Value, Value)>
      lseElement;
};

/// The batch and head of the current parallel iteration, for the callbacks.
struct BlockCoords {
  Value batch, head;
};

/// One worker's buffers. The window is a ring of key chunks: chunk kc
/// lives in slot kc mod W (columns of `kt`, rows of `v`), so moving to the
/// next query chunk gathers one new key chunk instead of the whole window.
/// Softmax and P·V do not depend on the order of the keys.
struct BlockScratch {
  Value q;           ///< [c, D] raw query rows (aliases `kRows` when shared).
  Value kRows;       ///< [c, D] the key chunk being gathered, as rows.
  Value invNorm;     ///< [c] per-row key normalization, when normalizing.
  Value kt, v;       ///< [D, W·c] keys transposed, [W·c, D] values.
  Value kpos, kbias; ///< [W·c] key positions (−1: absent) and score bias.
  Value qpos;        ///< [c] query positions.
  Value s, o;        ///< [c, W·c] scores, [c, D] P·V.
  Value rowMax, rowSum;
  /// Queries are the rows of the newest key chunk (shared QK, no look-ahead).
  bool sharedRows;
};

BlockScratch allocScratch(ImplicitLocOpBuilder &b, const BlockOperands &in,
                          bool sharedRows) {
  int64_t c = in.chunk, w = in.windowChunks * in.chunk, d = in.headDim;
  Type f32 = b.getF32Type(), i32Type = b.getI32Type();
  BlockScratch sc;
  sc.sharedRows = sharedRows;
  sc.kRows = scratch(b, {c, d}, f32);
  sc.q = sharedRows ? sc.kRows : scratch(b, {c, d}, f32);
  sc.invNorm = in.normalizeKeys ? scratch(b, {c}, f32) : Value();
  sc.kt = scratch(b, {d, w}, f32);
  sc.v = scratch(b, {w, d}, f32);
  sc.kpos = scratch(b, {w}, i32Type);
  sc.kbias = scratch(b, {w}, f32);
  sc.qpos = scratch(b, {c}, i32Type);
  sc.s = scratch(b, {c, w}, f32);
  sc.o = scratch(b, {c, d}, f32);
  sc.rowMax = scratch(b, {c}, f32);
  sc.rowSum = scratch(b, {c}, f32);
  return sc;
}

/// Gathers key chunk `kc` (unwrapped) into its ring slot: positions, bias,
/// values, and the keys transposed (normalized when asked). Absent keys get
/// position −1, zeros and a −inf bias.
void gatherKeyChunk(ImplicitLocOpBuilder &b, const BlockOperands &in,
                    const BlockCallbacks &cb, const BlockScratch &sc,
                    Value batch, Value head, Value kc) {
  int64_t c = in.chunk, d = in.headDim;
  Type f32 = b.getF32Type();
  Value zero = indexConst(b, 0);
  Value dim = indexConst(b, d);
  Value col0 = arith::MulIOp::create(b, positiveMod(b, kc, in.windowChunks),
                                     indexConst(b, c));
  forLoop(b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value u) {
    auto [j, exists] = cb.keyPosition(ib, kc, u);
    Value col = arith::AddIOp::create(ib, col0, u);
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
    memref::StoreOp::create(ib, bias, sc.kbias, ValueRange{col});
    memref::StoreOp::create(ib, pos, sc.kpos, ValueRange{col});
    copyRow(ib, in.keys, ValueRange{batch, head, safe}, sc.kRows, ValueRange{u},
            d, exists, in.lanes);
    if (in.normalizeKeys)
      storeInverseNorm(ib, sc.kRows, u, sc.invNorm, d, in.lanes);
    copyRow(ib, in.values, ValueRange{batch, head, safe}, sc.v, ValueRange{col},
            d, exists, in.lanes);
  });

  // Transpose lanes × lanes tiles in registers when the shapes allow
  // (element-wise transposed stores become slow scatters).
  if (c % in.lanes == 0 && d % in.lanes == 0) {
    auto tileType = VectorType::get({in.lanes, in.lanes}, f32);
    SmallVector<bool> inBounds = {true, true};
    forLoop(b, zero, indexConst(b, c), in.lanes,
            [&](ImplicitLocOpBuilder &ib, Value u0) {
              Value scale;
              if (in.normalizeKeys)
                scale = vector::BroadcastOp::create(
                    ib, tileType,
                    vector::LoadOp::create(ib, VectorType::get({in.lanes}, f32),
                                           sc.invNorm, ValueRange{u0}));
              Value col = arith::AddIOp::create(ib, col0, u0);
              forLoop(ib, zero, dim, in.lanes,
                      [&](ImplicitLocOpBuilder &lb, Value e0) {
                        Value tile = vector::TransferReadOp::create(
                            lb, tileType, sc.kRows, ValueRange{u0, e0},
                            f32Const(lb, 0.0), ArrayRef<bool>(inBounds));
                        Value flipped = vector::TransposeOp::create(
                            lb, tile, ArrayRef<int64_t>{1, 0});
                        if (scale)
                          flipped = arith::MulFOp::create(lb, flipped, scale);
                        vector::TransferWriteOp::create(
                            lb, flipped, sc.kt, ValueRange{e0, col},
                            ArrayRef<bool>(inBounds));
                      });
            });
    return;
  }
  forLoop(b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value u) {
    Value col = arith::AddIOp::create(ib, col0, u);
    Value scale = in.normalizeKeys
                      ? Value(memref::LoadOp::create(ib, sc.invNorm, u))
                      : Value();
    forLoop(ib, zero, dim, 1, [&](ImplicitLocOpBuilder &lb, Value e) {
      Value k = memref::LoadOp::create(lb, sc.kRows, ValueRange{u, e});
      if (scale)
        k = arith::MulFOp::create(lb, k, scale);
      memref::StoreOp::create(lb, k, sc.kt, ValueRange{e, col});
    });
  });
}

/// Prefetches the key and value rows of key chunk `kc` (unwrapped): LSH
/// gathers rows in bucket order, which no hardware prefetcher predicts, so
/// the next chunk's rows are requested while this block computes.
void prefetchKeyChunk(ImplicitLocOpBuilder &b, const BlockOperands &in,
                      const BlockCallbacks &cb, Value batch, Value head,
                      Value kc) {
  Value zero = indexConst(b, 0);
  forLoop(b, zero, indexConst(b, in.chunk), 1,
          [&](ImplicitLocOpBuilder &ib, Value u) {
            auto [j, exists] = cb.keyPosition(ib, kc, u);
            Value safe =
                exists ? arith::SelectOp::create(ib, exists, j, zero) : j;
            for (Value rows : {in.keys, in.values}) {
              auto type = cast<MemRefType>(rows.getType());
              int64_t perLine =
                  kCacheLineBytes * 8 / type.getElementTypeBitWidth();
              for (int64_t e = 0; e < in.headDim; e += perLine)
                memref::PrefetchOp::create(
                    ib, rows, ValueRange{batch, head, safe, indexConst(ib, e)},
                    /*isWrite=*/false, /*localityHint=*/2,
                    /*isDataCache=*/true);
            }
          });
}

/// The positions (and, unless shared with the newest key chunk, the rows)
/// of query chunk `qc`.
void gatherQueries(ImplicitLocOpBuilder &b, const BlockOperands &in,
                   const BlockCallbacks &cb, const BlockScratch &sc,
                   Value batch, Value head, Value qc) {
  Value zero = indexConst(b, 0);
  forLoop(b, zero, indexConst(b, in.chunk), 1,
          [&](ImplicitLocOpBuilder &ib, Value t) {
            Value i = cb.queryPosition(ib, qc, t);
            memref::StoreOp::create(ib, i32(ib, i), sc.qpos, ValueRange{t});
            if (!sc.sharedRows)
              copyRow(ib, in.queries, ValueRange{batch, head, i}, sc.q,
                      ValueRange{t}, in.headDim, Value(), in.lanes);
          });
}

/// Masked score of one key vector against one query: (ib, score, key
/// positions, key bias, query position, vector?).
using MaskedScoreFn = function_ref<Value(ImplicitLocOpBuilder &, Value, Value,
                                         Value, Value, bool)>;

/// s = mask(q · kt) and rowMax = max over each row, in register blocks of
/// kScoreRows rows × 2 vectors: the masks and the row maxima are applied to
/// the accumulators before they are stored, so the scores are written once
/// and never re-read before the exponentials.
void emitFusedScores(ImplicitLocOpBuilder &b, const BlockOperands &in,
                     const BlockScratch &sc, MaskedScoreFn maskedScore) {
  int64_t c = in.chunk, w = in.windowChunks * in.chunk, d = in.headDim;
  auto vecType = VectorType::get({in.lanes}, b.getF32Type());
  auto vecI32 = VectorType::get({in.lanes}, b.getI32Type());
  Value zero = indexConst(b, 0);
  Value negInf = vector::BroadcastOp::create(
      b, vecType, f32Const(b, -std::numeric_limits<double>::infinity()));
  Value zeros = vector::BroadcastOp::create(b, vecType, f32Const(b, 0.0));
  forLoop(
      b, zero, indexConst(b, c), kScoreRows,
      [&](ImplicitLocOpBuilder &tb, Value t0) {
        SmallVector<Value> rows;
        for (int64_t r = 0; r < kScoreRows; ++r)
          rows.push_back(arith::AddIOp::create(tb, t0, indexConst(tb, r)));
        SmallVector<Value> maxInit(kScoreRows, negInf);
        auto panels = scf::ForOp::create(
            tb, zero, indexConst(tb, w), indexConst(tb, 2 * in.lanes), maxInit,
            [&](OpBuilder &n1, Location l1, Value u0, ValueRange maxes) {
              ImplicitLocOpBuilder pb(l1, n1);
              Value u1 =
                  arith::AddIOp::create(pb, u0, indexConst(pb, in.lanes));
              SmallVector<Value> accInit(2 * kScoreRows, zeros);
              auto dots = scf::ForOp::create(
                  pb, zero, indexConst(pb, d), indexConst(pb, 1), accInit,
                  [&](OpBuilder &n2, Location l2, Value e, ValueRange acc) {
                    ImplicitLocOpBuilder kb(l2, n2);
                    Value k0 = vector::LoadOp::create(kb, vecType, sc.kt,
                                                      ValueRange{e, u0});
                    Value k1 = vector::LoadOp::create(kb, vecType, sc.kt,
                                                      ValueRange{e, u1});
                    SmallVector<Value> next;
                    for (int64_t r = 0; r < kScoreRows; ++r) {
                      Value a = vector::BroadcastOp::create(
                          kb, vecType,
                          memref::LoadOp::create(kb, sc.q,
                                                 ValueRange{rows[r], e}));
                      next.push_back(
                          vector::FMAOp::create(kb, a, k0, acc[2 * r]));
                      next.push_back(
                          vector::FMAOp::create(kb, a, k1, acc[2 * r + 1]));
                    }
                    scf::YieldOp::create(kb, next);
                  });
              Value pos[2], bias[2];
              Value cols[2] = {u0, u1};
              for (int64_t v = 0; v < 2; ++v) {
                pos[v] = vector::LoadOp::create(pb, vecI32, sc.kpos,
                                                ValueRange{cols[v]});
                bias[v] = vector::LoadOp::create(pb, vecType, sc.kbias,
                                                 ValueRange{cols[v]});
              }
              SmallVector<Value> nextMax;
              for (int64_t r = 0; r < kScoreRows; ++r) {
                Value qi =
                    memref::LoadOp::create(pb, sc.qpos, ValueRange{rows[r]});
                Value m = maxes[r];
                for (int64_t v = 0; v < 2; ++v) {
                  Value x = maskedScore(pb, dots.getResult(2 * r + v), pos[v],
                                        bias[v], qi, true);
                  vector::StoreOp::create(pb, x, sc.s,
                                          ValueRange{rows[r], cols[v]});
                  m = fastMax(pb, m, x);
                }
                nextMax.push_back(m);
              }
              scf::YieldOp::create(pb, nextMax);
            });
        for (int64_t r = 0; r < kScoreRows; ++r) {
          Value m =
              vector::ReductionOp::create(tb, vector::CombiningKind::MAXIMUMF,
                                          panels.getResult(r), maxFlags());
          memref::StoreOp::create(tb, m, sc.rowMax, ValueRange{rows[r]});
        }
      });
}

/// Scores of query chunk `qc` against the window, masks, softmax, P·V and
/// the normalized write of outputs and log-sum-exps.
void attend(ImplicitLocOpBuilder &b, const BlockOperands &in,
            const BlockCallbacks &cb, const BlockScratch &sc, Value qc) {
  int64_t c = in.chunk, w = in.windowChunks * in.chunk, d = in.headDim;
  Type f32 = b.getF32Type();
  Value q = sc.q, kt = sc.kt, v = sc.v, s = sc.s, o = sc.o;
  Value qpos = sc.qpos, kpos = sc.kpos, kbias = sc.kbias;
  Value rowMax = sc.rowMax, rowSum = sc.rowSum;
  Value zero = indexConst(b, 0);
  Value dim = indexConst(b, d);

  // Scores: a fused kernel (masks and row maxima applied to the register
  // block before it is stored) when the shapes allow and no pair term is
  // added; otherwise a matmul, then a pass for masks and maxima.
  bool fused = !cb.extraScore && d % in.lanes == 0 && w % (2 * in.lanes) == 0 &&
               c % kScoreRows == 0;
  if (!fused) {
    linalg::FillOp::create(b, ValueRange{f32Const(b, 0.0)}, ValueRange{s});
    linalg::MatmulOp::create(b, ValueRange{q, kt}, ValueRange{s});
  }

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

  // Masks and softmax, a vector of keys at a time, then a scalar tail.
  auto vecType = VectorType::get({in.lanes}, f32);
  auto vecI32 = VectorType::get({in.lanes}, b.getI32Type());
  int64_t full = w / in.lanes * in.lanes;
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
  // Pass 1 (unfused): masked scores and their maximum, for row t.
  auto maskedRowMax = [&](ImplicitLocOpBuilder &ib, Value t) -> Value {
    Value qi = memref::LoadOp::create(ib, qpos, ValueRange{t});
    Value negInf = f32Const(ib, -std::numeric_limits<double>::infinity());
    // Lane-wise running max/sum, reduced once per row: a scalar-carried
    // reduction per vector would be a strict chain of 16 dependent ops.
    Value negInfVec = vector::BroadcastOp::create(ib, vecType, negInf);
    auto vmax = scf::ForOp::create(
        ib, zero, indexConst(ib, full), indexConst(ib, in.lanes),
        ValueRange{negInfVec},
        [&](OpBuilder &nested, Location loc, Value u, ValueRange acc) {
          ImplicitLocOpBuilder lb(loc, nested);
          Value sv = vector::LoadOp::create(lb, vecType, s, ValueRange{t, u});
          Value pos = vector::LoadOp::create(lb, vecI32, kpos, ValueRange{u});
          Value bias =
              vector::LoadOp::create(lb, vecType, kbias, ValueRange{u});
          Value x = maskedScore(lb, sv, pos, bias, qi, true);
          vector::StoreOp::create(lb, x, s, ValueRange{t, u});
          scf::YieldOp::create(lb, ValueRange{fastMax(lb, acc[0], x)});
        });
    // reassoc: a tree of lane shuffles instead of a chain of 16 scalar ops.
    Value vmaxScalar = vector::ReductionOp::create(
        ib, vector::CombiningKind::MAXIMUMF, vmax.getResult(0), maxFlags());
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
          scf::YieldOp::create(lb, ValueRange{fastMax(lb, acc[0], x)});
        });
    return smax.getResult(0);
  };
  if (fused)
    emitFusedScores(b, in, sc, maskedScore);
  forLoop(b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value t) {
    Value m;
    if (fused)
      m = memref::LoadOp::create(ib, rowMax, ValueRange{t});
    else
      m = maskedRowMax(ib, t);
    // Pass 2: p = exp(x − max), and their sum.
    Value mv = vector::BroadcastOp::create(ib, vecType, m);
    Value zeroVec = vector::BroadcastOp::create(ib, vecType, f32Const(ib, 0.0));
    auto vsum = scf::ForOp::create(
        ib, zero, indexConst(ib, full), indexConst(ib, in.lanes),
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
        ib, vector::CombiningKind::ADD, vsum.getResult(0),
        arith::FastMathFlags::reassoc);
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
    if (!fused) // the fused kernel stored it already
      memref::StoreOp::create(ib, m, rowMax, ValueRange{t});
    memref::StoreOp::create(ib, ssum.getResult(0), rowSum, ValueRange{t});
  });

  // Per row: 1/sum into rowSum and the log-sum-exp m + log(sum) into
  // rowMax, a vector of rows at a time (a scalar division and logarithm per row
  // cost as much as the row's normalized write).
  int64_t fullRows = c / in.lanes * in.lanes;
  auto rowStats = [&](ImplicitLocOpBuilder &lb, Value t, Type type) {
    auto load = [&](Value buffer) -> Value {
      if (isa<VectorType>(type))
        return vector::LoadOp::create(lb, type, buffer, ValueRange{t});
      return memref::LoadOp::create(lb, buffer, ValueRange{t});
    };
    auto store = [&](Value x, Value buffer) {
      if (isa<VectorType>(type))
        vector::StoreOp::create(lb, x, buffer, ValueRange{t});
      else
        memref::StoreOp::create(lb, x, buffer, ValueRange{t});
    };
    Value sum = load(rowSum);
    Value one = f32Const(lb, 1.0);
    if (isa<VectorType>(type))
      one = vector::BroadcastOp::create(lb, type, one);
    if (cb.lseElement)
      store(
          arith::AddFOp::create(lb, load(rowMax), math::LogOp::create(lb, sum)),
          rowMax);
    store(arith::DivFOp::create(lb, one, sum), rowSum);
  };
  forLoop(b, zero, indexConst(b, fullRows), in.lanes,
          [&](ImplicitLocOpBuilder &lb, Value t) { rowStats(lb, t, vecType); });
  forLoop(b, indexConst(b, fullRows), indexConst(b, c), 1,
          [&](ImplicitLocOpBuilder &lb, Value t) { rowStats(lb, t, f32); });

  // Outputs: P·V, normalized per row.
  linalg::FillOp::create(b, ValueRange{f32Const(b, 0.0)}, ValueRange{o});
  linalg::MatmulOp::create(b, ValueRange{s, v}, ValueRange{o});
  forLoop(b, zero, indexConst(b, c), 1, [&](ImplicitLocOpBuilder &ib, Value t) {
    Value inv = memref::LoadOp::create(ib, rowSum, ValueRange{t});
    Value qi = arith::IndexCastOp::create(
        ib, ib.getIndexType(), memref::LoadOp::create(ib, qpos, ValueRange{t}));
    auto [buffer, prefix] = cb.outputRow(ib, qc, t, qi);
    Type outType = cast<MemRefType>(buffer.getType()).getElementType();
    int64_t step = d % in.lanes == 0 ? in.lanes : 1;
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
      Value x = vector::LoadOp::create(lb, VectorType::get({in.lanes}, f32), o,
                                       ValueRange{t, e});
      x = arith::MulFOp::create(lb, x,
                                vector::BroadcastOp::create(
                                    lb, VectorType::get({in.lanes}, f32), inv));
      if (!outType.isF32())
        x = arith::TruncFOp::create(lb, VectorType::get({in.lanes}, outType),
                                    x);
      vector::StoreOp::create(lb, x, buffer, to);
    });
    if (cb.lseElement) {
      auto [lseBuffer, at] = cb.lseElement(ib, qc, t, qi);
      memref::StoreOp::create(
          ib, memref::LoadOp::create(ib, rowMax, ValueRange{t}), lseBuffer, at);
    }
  });
}

/// The parallel loop over (batch, head, run of query chunks). Each
/// iteration walks `group` consecutive query chunks, sliding the key ring:
/// the window's look-back chunks are gathered once per run, then one new
/// key chunk per query chunk.
void forEachBlockRun(ImplicitLocOpBuilder &b, const BlockOperands &in,
                     const BlockCallbacks &cb, BlockCoords &at, int64_t batch,
                     int64_t heads, int64_t numChunks) {
  int64_t group = 1;
  for (int64_t g =
           std::min<int64_t>(numChunks, std::max<int64_t>(in.maxRun, 1));
       g >= 1; --g)
    if (numChunks % g == 0) {
      group = g;
      break;
    }
  int64_t after = in.windowChunks - 1 - in.chunksBefore;
  bool sharedRows = in.normalizeKeys && after == 0;
  Value zero = indexConst(b, 0), one = indexConst(b, 1);
  scf::ParallelOp::create(
      b, NameLoc::get(b.getStringAttr(in.kernelName), b.getLoc()),
      ValueRange{zero, zero, zero},
      ValueRange{indexConst(b, batch), indexConst(b, heads),
                 indexConst(b, numChunks / group)},
      ValueRange{one, one, one},
      [&](OpBuilder &nested, Location loc, ValueRange ivs) {
        ImplicitLocOpBuilder pb(loc, nested);
        Value batchIv = ivs[0], head = ivs[1];
        at = {batchIv, head};
        BlockScratch sc = allocScratch(pb, in, sharedRows);
        Value first = arith::MulIOp::create(pb, ivs[2], indexConst(pb, group));
        // The window of the run's first query chunk, but its newest chunk.
        Value firstKey =
            arith::SubIOp::create(pb, first, indexConst(pb, in.chunksBefore));
        forLoop(pb, zero, indexConst(pb, in.windowChunks - 1), 1,
                [&](ImplicitLocOpBuilder &ib, Value i) {
                  gatherKeyChunk(ib, in, cb, sc, batchIv, head,
                                 arith::AddIOp::create(ib, firstKey, i));
                });
        forLoop(pb, zero, indexConst(pb, group), 1,
                [&](ImplicitLocOpBuilder &ib, Value i) {
                  Value qc = arith::AddIOp::create(ib, first, i);
                  gatherKeyChunk(
                      ib, in, cb, sc, batchIv, head,
                      arith::AddIOp::create(ib, qc, indexConst(ib, after)));
                  gatherQueries(ib, in, cb, sc, batchIv, head, qc);
                  prefetchKeyChunk(
                      ib, in, cb, batchIv, head,
                      arith::AddIOp::create(ib, qc, indexConst(ib, after + 1)));
                  attend(ib, in, cb, sc, qc);
                });
        scf::ReduceOp::create(pb);
      });
}

struct LowerSortedChunkAttention : OpRewritePattern<SortedChunkAttentionOp> {
  LowerSortedChunkAttention(MLIRContext *context,
                            const AttentionLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}
  AttentionLoweringOptions options;

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
    bool sequenceOrder = op.getSequenceOrder();

    Value queries = headsBuffer(b, op.getQk());
    Value values = headsBuffer(b, op.getV());
    Value perm = toBuffer(b, op.getPerm());
    Value inverse = op.getInverse() ? toBuffer(b, op.getInverse()) : Value();
    Value mask = op.getMask() ? toBuffer(b, op.getMask()) : Value();
    auto outType = cast<RankedTensorType>(op.getOut().getType());
    Value out = allocBuffer(b, outType);
    Value lse = allocBuffer(b, cast<RankedTensorType>(op.getLse().getType()));
    // Keys are the query rows, normalized as they are gathered.
    BlockOperands in{queries,
                     queries,
                     values,
                     mask,
                     chunk,
                     before + 1 + after,
                     before,
                     dim,
                     op.getCausal(),
                     /*selfMask=*/true,
                     /*normalizeKeys=*/true,
                     options.maxBlockRun,
                     options.vectorLanes,
                     "lsh_attention"};
    BlockCoords at;

    // Sorted slot → (round, slot within the round) → position.
    auto split = [&](ImplicitLocOpBuilder &ib, Value slot) {
      return std::make_pair(
          arith::DivUIOp::create(ib, slot, indexConst(ib, len)).getResult(),
          arith::RemUIOp::create(ib, slot, indexConst(ib, len)).getResult());
    };
    auto positionAt = [&](ImplicitLocOpBuilder &ib, Value slot) -> Value {
      auto [round, within] = split(ib, slot);
      return arith::IndexCastOp::create(
          ib, ib.getIndexType(),
          memref::LoadOp::create(ib, perm,
                                 ValueRange{at.batch, at.head, round, within}));
    };
    auto slotOf = [&](ImplicitLocOpBuilder &ib, Value chunkIndex, Value t) {
      return arith::AddIOp::create(
                 ib,
                 arith::MulIOp::create(ib, chunkIndex, indexConst(ib, chunk)),
                 t)
          .getResult();
    };
    DuplicateCount counter{inverse,   rounds, len,  chunk,
                           numChunks, before, after};
    auto duplicates = [&](ImplicitLocOpBuilder &ib, Value i, Value j) {
      return counter.score(ib, at.batch, at.head, i, j);
    };
    auto queryPositionFn = [&](ImplicitLocOpBuilder &ib, Value qc, Value t) {
      return positionAt(ib, slotOf(ib, qc, t));
    };
    // Chunks wrap around: the first chunk's look-back is the last one.
    auto keyPositionFn = [&](ImplicitLocOpBuilder &ib, Value kc, Value u) {
      Value slot = slotOf(ib, positiveMod(ib, kc, numChunks), u);
      return std::make_pair(positionAt(ib, slot), Value());
    };
    // Sorted order by default; sequence order (position qi) when the
    // unsort is fused in.
    auto rowIndices = [&](ImplicitLocOpBuilder &ib, Value qc, Value t,
                          Value qi) {
      auto [round, within] = split(ib, slotOf(ib, qc, t));
      return SmallVector<Value>{at.batch, at.head, round,
                                sequenceOrder ? qi : within};
    };
    auto outputRowFn = [&](ImplicitLocOpBuilder &ib, Value qc, Value t,
                           Value qi) {
      return std::make_pair(out, rowIndices(ib, qc, t, qi));
    };
    auto lseElementFn = [&](ImplicitLocOpBuilder &ib, Value qc, Value t,
                            Value qi) {
      return std::make_pair(lse, rowIndices(ib, qc, t, qi));
    };
    // function_refs must point at named lambdas that outlive the call.
    BlockCallbacks cb;
    cb.queryPosition = queryPositionFn;
    cb.keyPosition = keyPositionFn;
    cb.outputRow = outputRowFn;
    cb.lseElement = lseElementFn;
    if (op.getDuplicateCorrection())
      cb.extraScore = duplicates;
    if (!options.outlineAttention || op.getDuplicateCorrection()) {
      forEachBlockRun(b, in, cb, at, shape[0], shape[1], numChunks);
      rewriter.replaceOp(op, {toTensor(b, out), toTensor(b, lse)});
      return success();
    }

    // The blocks in a private function of the buffers, called here: a
    // target pass may replace its body (the callbacks above read the
    // function's arguments).
    SmallVector<Value> args = {queries, values, perm};
    if (mask)
      args.push_back(mask);
    args.append({out, lse});
    SmallVector<NamedAttribute> params =
        windowParams(rewriter, chunk, before, after, op.getCausal());
    params.append({rewriter.getNamedAttr("sequence_order",
                                         rewriter.getBoolAttr(sequenceOrder)),
                   rewriter.getNamedAttr("self_score",
                                         rewriter.getF64FloatAttr(kSelfScore)),
                   rewriter.getNamedAttr(
                       "key_norm_eps", rewriter.getF64FloatAttr(kKeyNormEps))});
    Value result = out, resultLse = lse;
    outlineBlocks(
        rewriter, b, op, "lsh_attention", args, kLshAttentionBlockAttrName,
        params, [&](ImplicitLocOpBuilder &fb, ValueRange params) {
          queries = params[0];
          perm = params[2];
          mask = mask ? params[3] : Value();
          out = params[params.size() - 2];
          lse = params.back();
          in.queries = in.keys = queries;
          in.values = params[1];
          in.mask = mask;
          forEachBlockRun(fb, in, cb, at, shape[0], shape[1], numChunks);
        });
    rewriter.replaceOp(op, {toTensor(b, result), toTensor(b, resultLse)});
    return success();
  }
};

struct LowerLocalAttention : OpRewritePattern<LocalAttentionOp> {
  LowerLocalAttention(MLIRContext *context,
                      const AttentionLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}
  AttentionLoweringOptions options;

  LogicalResult matchAndRewrite(LocalAttentionOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getQ().getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    ArrayRef<int64_t> s = type.getShape();
    int64_t dim = s[3];
    int64_t chunk = op.getChunkLen(), numChunks = s[2] / chunk;
    int64_t before = op.getChunksBefore(), after = op.getChunksAfter();

    // Fold 1/sqrt(D) into the keys once.
    double scale = 1.0 / std::sqrt(static_cast<double>(dim));
    Value scaledKeys = scaledF32Tensor(b, op.getK(), scale);
    auto outType = cast<RankedTensorType>(op.getType());
    Value out = allocBuffer(b, outType);
    BlockOperands in{headsBuffer(b, op.getQ()),
                     toBuffer(b, scaledKeys),
                     headsBuffer(b, op.getV()),
                     op.getMask() ? toBuffer(b, op.getMask()) : Value(),
                     chunk,
                     before + 1 + after,
                     before,
                     dim,
                     op.getCausal(),
                     /*selfMask=*/false,
                     /*normalizeKeys=*/false,
                     options.maxBlockRun,
                     options.vectorLanes,
                     "local_attention"};
    BlockCoords at;
    auto queryPositionFn = [&](ImplicitLocOpBuilder &ib, Value qc,
                               Value t) -> Value {
      return arith::AddIOp::create(
          ib, arith::MulIOp::create(ib, qc, indexConst(ib, chunk)), t);
    };
    // Keys of chunks outside the sequence do not exist (no wrap-around).
    auto keyPositionFn = [&](ImplicitLocOpBuilder &ib, Value kc, Value u) {
      return localKeyPosition(ib, kc, u, chunk, numChunks);
    };
    auto outputRowFn = [&](ImplicitLocOpBuilder &ib, Value qc, Value t,
                           Value qi) {
      return std::make_pair(out, SmallVector<Value>{at.batch, at.head, qi});
    };
    // function_refs must point at named lambdas that outlive the call.
    BlockCallbacks cb;
    cb.queryPosition = queryPositionFn;
    cb.keyPosition = keyPositionFn;
    cb.outputRow = outputRowFn;
    if (!options.outlineAttention) {
      forEachBlockRun(b, in, cb, at, s[0], s[1], numChunks);
      rewriter.replaceOp(op, toTensor(b, out));
      return success();
    }

    // The blocks in a private function of the buffers, as for LSH.
    SmallVector<Value> args = {in.queries, in.keys, in.values};
    if (in.mask)
      args.push_back(in.mask);
    args.push_back(out);
    Value result = out;
    outlineBlocks(rewriter, b, op, "local_attention", args,
                  kLocalAttentionBlockAttrName,
                  windowParams(rewriter, chunk, before, after, op.getCausal()),
                  [&](ImplicitLocOpBuilder &fb, ValueRange params) {
                    in.queries = params[0];
                    in.keys = params[1];
                    in.values = params[2];
                    in.mask = in.mask ? params[3] : Value();
                    out = params.back();
                    forEachBlockRun(fb, in, cb, at, s[0], s[1], numChunks);
                  });
    rewriter.replaceOp(op, toTensor(b, result));
    return success();
  }
};

} // namespace

void reformer::populateAttentionLoweringPatterns(
    RewritePatternSet &patterns, const AttentionLoweringOptions &options) {
  patterns.add<LowerSortedChunkAttention, LowerLocalAttention>(
      patterns.getContext(), options);
}
