//===- AttentionGradKernel.cpp - Fused attention gradients ----------------===//
//
// The gradient of one LSH (or local) attention as one kernel,
// FlashAttention-2 style with keys outside and queries inside: a GPU block
// per (batch, head, tile of up to 64 sorted key slots), 16 keys per warp. A
// warp keeps its keys (normalized) and values as bf16 mma fragments, and their
// gradients as f32 accumulators, for the whole block. It visits every query
// chunk whose window holds the tile (wrapping around the sorted sequence, as
// the forward does) in tiles of 16 or 32 queries, with mma.sync throughout:
//
//   Sᵀ = K·Qᵀ,  P̃ᵀ = exp(Sᵀ + masks − lse_r)·w_r,  dPᵀ = V·dOᵀ,
//   dSᵀ = P̃ᵀ ⊙ (dPᵀ − do·out),  dV += P̃ᵀ·dO,  dK += dSᵀ·Q,
//
// where lse_r is the forward's log-sum-exp of the query's round and w_r
// its round weight, so P̃ is the probability the combined output gave the
// key. dS goes to shared memory, re-packed along keys by one shuffle, for
// dQ = dS·K, which the warps add to memory atomically per query tile; dK
// and dV are added at the end (a position is a key once per round).
//
// Local attention has one round (w = 1) in sequence order, keys of their
// own scaled by 1/sqrt(d), no self mask and no wrap-around: query chunks
// past the sequence's ends are skipped. Its op has no log-sum-exps, so the
// kernel is preceded by the fused forward writing the outputs and
// log-sum-exps (do·out is taken per query tile).
//
//===----------------------------------------------------------------------===//

#include "AttentionKernels.h"

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// The kernel's shared buffers, in GradBlocks::shared order.
enum Shared {
  KeysT,       ///< [d][key pairs]: the tile's keys, normalized, transposed.
  Queries,     ///< [query][d pairs]
  QueriesT,    ///< [d][query pairs]
  Grads,       ///< [query][d pairs]: output gradients.
  GradsT,      ///< [d][query pairs]
  ScoreGrads,  ///< [query][key pairs]: dS.
  KeyPos,      ///< [key] positions.
  KeyScale,    ///< [key] normalizations.
  QueryPos,    ///< [query] positions.
  QueryLse,    ///< [query] log-sum-exps of their rounds.
  QueryWeight, ///< [query] round weights.
  QueryDelta,  ///< [query] do·out.
};

/// One attention gradient's operands and shape. LSH: keys are the
/// queries, normalized; lse is [B, H, R, L], with round weights and do·out.
/// Local: keys of their own scaled by `keyScale`; the forward's outputs
/// and lse [B, H, L] (filled by the statistics kernel).
struct GradBlocks : AttentionShape {
  Value queries, keys, values, perm, mask, resultGrad, lse, weights, outDot;
  Value out;
  Value dq, dk, dv;
  WindowParams w;
  bool local;
  double keyScale = 1.0;

  int64_t numChunks() const { return rounds * len / w.chunk; }
  int64_t keyTile() const { return std::min(w.chunk, kMaxKeyTile); }
  int64_t warps() const { return keyTile() / kRowsPerWarp; }
  int64_t threads() const { return warps() * kWarpSize; }
  /// Queries per tile: the dQ tiles of 16 × 8 must split evenly over the
  /// warps. 0: none fits.
  int64_t queryTile() const {
    for (int64_t rows : {16, 32, 64})
      if (w.chunk % rows == 0 && (rows / 16 * dim / 8) % warps() == 0)
        return rows;
    return 0;
  }
  /// The shapes of the Shared buffers.
  SharedBuffers shared(Builder &b) const {
    int64_t kt = keyTile(), nq = queryTile();
    Type i32 = b.getI32Type(), f32 = b.getF32Type();
    return {{{dim, kt / 2 + kPadWords}, i32},
            {{nq, dim / 2 + kPadWords}, i32},
            {{dim, nq / 2 + kPadWords}, i32},
            {{nq, dim / 2 + kPadWords}, i32},
            {{dim, nq / 2 + kPadWords}, i32},
            {{nq, kt / 2 + kPadWords}, i32},
            {{kt}, i32},
            {{kt}, f32},
            {{nq}, i32},
            {{nq}, f32},
            {{nq}, f32},
            {{nq}, f32}};
  }
};

int64_t sharedBytes(const SharedBuffers &buffers) {
  int64_t bytes = 0;
  for (auto &[shape, type] : buffers) {
    int64_t n = 4;
    for (int64_t extent : shape)
      n *= extent;
    bytes += n;
  }
  return bytes;
}

/// The gradient blocks of `function`, or nullopt when the kernel does not
/// apply (the loop body stays).
std::optional<GradBlocks> matchGradBlocks(func::FuncOp function) {
  GradBlocks k;
  auto params =
      function->getAttrOfType<DictionaryAttr>(kLshAttentionGradBlockAttrName);
  k.local = !params;
  if (k.local)
    params = function->getAttrOfType<DictionaryAttr>(
        kLocalAttentionGradBlockAttrName);
  if (!params || function.isExternal())
    return std::nullopt;
  std::optional<WindowParams> window = parseWindowParams(params, !k.local);
  auto args = function.getArguments();
  // LSH: qk, v, perm, mask?, do, lse, weights, do·out, dq, dk, dv.
  // Local: q, k, v, mask?, do, out, lse, dq, dk, dv.
  size_t count = k.local ? 9 : 10;
  if (!window || (args.size() != count && args.size() != count + 1))
    return std::nullopt;
  for (Value arg : args)
    if (!hasStaticStrides(arg))
      return std::nullopt;
  k.w = *window;
  size_t n = 0;
  k.queries = args[n++];
  k.keys = k.local ? args[n++] : k.queries;
  k.values = args[n++];
  if (!k.local)
    k.perm = args[n++];
  if (args.size() == count + 1)
    k.mask = args[n++];
  k.resultGrad = args[n++];
  if (k.local) {
    k.out = args[n++];
    k.lse = args[n++];
  } else {
    k.lse = args[n++];
    k.weights = args[n++];
    k.outDot = args[n++];
  }
  k.dq = args[n++];
  k.dk = args[n++];
  k.dv = args[n++];
  std::optional<AttentionShape> shape = attentionShape(k.queries, k.perm);
  if (!shape)
    return std::nullopt;
  static_cast<AttentionShape &>(k) = *shape;
  // The shapes the op verifiers guarantee, checked again: a hand-written
  // tagged function must not become out-of-bounds accesses.
  Builder b(function.getContext());
  auto shaped = [](Value v, ArrayRef<int64_t> shape, Type element = {}) {
    auto type = cast<MemRefType>(v.getType());
    Type t = type.getElementType();
    return type.getShape() == shape &&
           (element ? t == element : (t.isF32() || t.isBF16()));
  };
  SmallVector<int64_t> rows = {k.batch, k.heads, k.len, k.dim};
  SmallVector<int64_t> slots = {k.batch, k.heads, k.rounds, k.len};
  SmallVector<int64_t> positions = {k.batch, k.heads, k.len};
  Type f32 = b.getF32Type();
  if (!shaped(k.queries, rows) || !shaped(k.keys, rows) ||
      !shaped(k.values, rows) || !shaped(k.resultGrad, rows) ||
      (k.mask && !shaped(k.mask, {k.batch, k.len}, b.getI1Type())) ||
      !shaped(k.dq, rows, f32) || !shaped(k.dk, rows, f32) ||
      !shaped(k.dv, rows, f32))
    return std::nullopt;
  if (k.local ? (!shaped(k.out, rows, f32) || !shaped(k.lse, positions, f32))
              : (!shaped(k.perm, slots, b.getI32Type()) ||
                 !shaped(k.lse, slots, f32) || !shaped(k.weights, slots, f32) ||
                 !shaped(k.outDot, positions, f32)))
    return std::nullopt;
  if (k.local) {
    k.keyScale = 1.0 / std::sqrt(double(k.dim));
    if (!localForwardFits(k.queries, k.w))
      return std::nullopt;
  }
  // Warps of 16 keys; a key tile lies in one chunk of one round; one mma
  // k-step per 16 of the head dimension, at most 128 (the registers of a
  // warp's keys' gradients: 128 per thread).
  if (k.w.chunk % kRowsPerWarp != 0 || k.len % k.w.chunk != 0 ||
      k.w.chunk % k.keyTile() != 0 || k.dim % 16 != 0 || k.dim > 128 ||
      k.queryTile() == 0 || sharedBytes(k.shared(b)) > kSharedLimitBytes)
    return std::nullopt;
  return k;
}

/// Emits the kernel of `k` for one block: key tile `tile` of head `h` of
/// batch `bb`.
class GradEmitter {
public:
  GradEmitter(LaneBuilder &lanes, const GradBlocks &k)
      : L(lanes), b(lanes.builder()), loc(lanes.location()), k(k) {}

  void emit(Value tile, Value h, Value bb, Value tid, ValueRange shared) {
    this->bb = bb;
    this->h = h;
    this->tid = tid;
    this->shared.assign(shared.begin(), shared.end());
    int64_t d = k.dim, kt = k.keyTile(), c = k.w.chunk, nq = k.queryTile();
    warp = L.div(tid, kWarpSize);
    Value lane = L.rem(tid, kWarpSize);
    group = L.div(lane, 4);
    inGroup = L.rem(lane, 4);

    Value firstSlot = L.mul(tile, kt);
    loadKeys(firstSlot);

    // Every query chunk whose window holds the tile's chunk kc: query
    // chunk qc sees key chunks qc − before … qc + after. The chunk indices
    // are uniform over the block: scalars, also in the emulation.
    int64_t window = k.w.before + 1 + k.w.after, tilesPerChunk = c / nq;
    int64_t numChunks = k.numChunks();
    Value kc = arith::DivUIOp::create(
        b, loc, arith::MulIOp::create(b, loc, tile, scalar(kt)), scalar(c));
    SmallVector<Value> acc = loop(
        window * tilesPerChunk, SmallVector<Value>(2 * (d / 8) * 4, L.f32(0)),
        [&](Value it, ValueRange carried) {
          Value offset =
              arith::DivUIOp::create(b, loc, it, scalar(tilesPerChunk));
          Value qc = arith::SubIOp::create(
              b, loc, arith::AddIOp::create(b, loc, kc, scalar(k.w.before)),
              offset);
          Value inRange;
          if (k.local) {
            // No wrap-around: chunks past the sequence's ends do not exist.
            inRange = arith::AndIOp::create(
                b, loc,
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, qc,
                                      scalar(0)),
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, qc,
                                      scalar(numChunks)));
          } else {
            Value r = arith::RemSIOp::create(b, loc, qc, scalar(numChunks));
            qc = arith::SelectOp::create(
                b, loc,
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, r,
                                      scalar(0)),
                arith::AddIOp::create(b, loc, r, scalar(numChunks)), r);
          }
          Value firstQuery = arith::AddIOp::create(
              b, loc, arith::MulIOp::create(b, loc, qc, scalar(c)),
              arith::MulIOp::create(
                  b, loc,
                  arith::RemUIOp::create(b, loc, it, scalar(tilesPerChunk)),
                  scalar(nq)));
          auto attend = [&]() {
            SmallVector<Value> next(carried);
            gatherQueries(firstQuery);
            attendQueries(next);
            L.barrier(); // the next tile overwrites the shared buffers
            return next;
          };
          if (!inRange)
            return attend();
          auto ifOp = scf::IfOp::create(b, loc, ValueRange(carried).getTypes(),
                                        inRange, /*withElseRegion=*/true);
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToStart(ifOp.thenBlock());
          scf::YieldOp::create(b, loc, attend());
          b.setInsertionPointToStart(ifOp.elseBlock());
          scf::YieldOp::create(b, loc, carried);
          return SmallVector<Value>(ifOp.getResults());
        });
    // dK (of the normalized or scaled keys: local keys' scale is undone
    // here, LSH normalization by the caller) and dV: a position is a key
    // in every round.
    for (int64_t nd = 0; nd < d / 8; ++nd)
      for (int64_t v = 0; v < 4; ++v) {
        Value col = L.add(L.mul(inGroup, 2), 8 * nd + v % 2);
        Value dkValue = acc[4 * nd + v];
        if (k.keyScale != 1.0)
          dkValue = fmul(dkValue, L.f32(k.keyScale));
        L.atomicAdd(dkValue, k.dk, {bb, h, keyRow[v / 2], col});
        L.atomicAdd(acc[4 * (d / 8) + 4 * nd + v], k.dv,
                    {bb, h, keyRow[v / 2], col});
      }
  }

private:
  Value scalar(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value loadF32(Value memref, ValueRange indices) {
    Value x = L.load(memref, indices);
    if (getElementTypeOrSelf(x.getType()).isF32())
      return x;
    return arith::ExtFOp::create(b, loc, L.laneType(b.getF32Type()), x);
  }
  Value cmp(arith::CmpIPredicate predicate, Value x, Value y) {
    return arith::CmpIOp::create(b, loc, predicate, L.lift(x), L.lift(y));
  }
  /// A sorted slot of [R·L] → (round, slot within the round).
  std::pair<Value, Value> split(Value slot) {
    return {L.div(slot, k.len), L.rem(slot, k.len)};
  }
  /// `fn(word)` for words 0 … count−1 spread over the threads; threads past
  /// the end run on word 0 with `fn`'s stores masked off.
  void forEachWord(int64_t count, function_ref<void(Value, Value)> fn) {
    int64_t n = k.threads();
    for (int64_t first = 0; first < count; first += n) {
      Value word = L.add(tid, first);
      Value valid;
      if (first + n > count) {
        valid = L.lessThan(word, count);
        word = L.select(valid, word, L.index(0));
      }
      fn(word, valid);
    }
  }

  /// The warp's 16 keys: positions, mask biases and normalizations; then
  /// the tile's keys, normalized and transposed, in shared memory.
  void loadKeys(Value firstSlot) {
    int64_t d = k.dim;
    Value leader = cmp(arith::CmpIPredicate::eq, inGroup, L.index(0));
    for (int64_t r = 0; r < 2; ++r) {
      Value inTile = L.add(L.mul(warp, kRowsPerWarp), L.add(group, 8 * r));
      Value slot = L.add(firstSlot, inTile);
      if (k.local) {
        keyPos[r] = L.toI32(slot);
        keyRow[r] = slot;
      } else {
        auto [round, within] = split(slot);
        keyPos[r] = L.load(k.perm, {bb, h, round, within});
        keyRow[r] = L.toIndex(keyPos[r]);
      }
      keyBias[r] = L.f32(0);
      if (k.mask)
        keyBias[r] = L.select(L.load(k.mask, {bb, keyRow[r]}), L.f32(0),
                              L.f32(k.w.maskedScore));
      if (k.local) {
        keyScale[r] = L.f32(k.keyScale);
        L.store(keyPos[r], shared[KeyPos], {inTile}, leader);
        L.store(keyScale[r], shared[KeyScale], {inTile}, leader);
        continue;
      }
      // The 4 threads of a group hold the row's columns between them.
      Value sumSq = L.f32(0);
      for (int64_t ks = 0; ks < d / 16; ++ks)
        for (int64_t e = 0; e < 4; ++e) {
          Value col = L.add(L.mul(inGroup, 2), 16 * ks + 8 * (e / 2) + e % 2);
          Value x = loadF32(k.keys, {bb, h, keyRow[r], col});
          sumSq = fadd(sumSq, fmul(x, x));
        }
      for (int64_t mask : {1, 2})
        sumSq = fadd(sumSq, L.shuffleXor(sumSq, mask));
      Value meanSq = fmul(sumSq, L.f32(1.0 / double(d)));
      keyScale[r] = fmul(
          math::RsqrtOp::create(b, loc, fadd(meanSq, L.f32(k.w.keyNormEps))),
          L.f32(1.0 / std::sqrt(double(d))));
      L.store(keyPos[r], shared[KeyPos], {inTile}, leader);
      L.store(keyScale[r], shared[KeyScale], {inTile}, leader);
    }
    L.barrier();
    forEachWord(d * k.keyTile() / 2, [&](Value word, Value valid) {
      Value e = L.rem(word, d), pair = L.div(word, d);
      Value key0 = L.mul(pair, 2), key1 = L.add(key0, 1);
      auto keyAt = [&](Value key) {
        Value row = L.toIndex(L.load(shared[KeyPos], {key}));
        return fmul(loadF32(k.keys, {bb, h, row, e}),
                    L.load(shared[KeyScale], {key}));
      };
      L.store(L.packBf16(keyAt(key0), keyAt(key1)), shared[KeysT], {e, pair},
              valid);
    });
  }

  /// A loop of `n` iterations carrying `init` (not unrolled: unrolled, the
  /// loads of every iteration would be issued at once and spill).
  SmallVector<Value>
  loop(int64_t n, ValueRange init,
       function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto forOp =
        scf::ForOp::create(b, loc, arith::ConstantIndexOp::create(b, loc, 0),
                           arith::ConstantIndexOp::create(b, loc, n),
                           arith::ConstantIndexOp::create(b, loc, 1), init);
    OpBuilder::InsertionGuard guard(b);
    // Without iteration values the builder adds an empty yield.
    if (init.empty())
      forOp.getBody()->getTerminator()->erase();
    b.setInsertionPointToStart(forOp.getBody());
    scf::YieldOp::create(
        b, loc, body(forOp.getInductionVar(), forOp.getRegionIterArgs()));
    return forOp.getResults();
  }

  /// The warp's 16 rows of `rows` (scaled by the key normalization with
  /// `scaled`), d pairs 16·ks … 16·ks + 15, as one bf16 A fragment. Read
  /// again per query tile (L1 holds them): registers beside dK and dV
  /// cannot.
  SmallVector<Value> rowFragment(Value rows, Value ks, bool scaled) {
    SmallVector<Value> frag;
    for (int64_t reg = 0; reg < 4; ++reg) {
      // Rows group (+8 for odd registers), d pairs at 2·inGroup (+8 for
      // the upper two registers).
      Value row = keyRow[reg % 2];
      Value col = L.add(L.add(L.mul(inGroup, 2), L.mul(ks, 16)), 8 * (reg / 2));
      Value x0 = loadF32(rows, {bb, h, row, col});
      Value x1 = loadF32(rows, {bb, h, row, L.add(col, 1)});
      if (scaled) {
        x0 = fmul(x0, keyScale[reg % 2]);
        x1 = fmul(x1, keyScale[reg % 2]);
      }
      frag.push_back(L.packBf16(x0, x1));
    }
    return frag;
  }

  /// Positions, log-sum-exps, round weights and do·out of the `nq` queries
  /// from sorted slot `firstQuery`, then their rows and output gradients
  /// (as rows and transposed) as bf16 pairs in shared memory.
  void gatherQueries(Value firstQuery) {
    int64_t d = k.dim, nq = k.queryTile();
    Value t = L.rem(tid, nq);
    Value slot = L.add(firstQuery, t);
    Value first = L.lessThan(tid, nq);
    if (k.local) {
      // One round: weight 1; do·out from the statistics kernel's outputs.
      Value row = slot;
      L.store(L.toI32(slot), shared[QueryPos], {t}, first);
      L.store(L.load(k.lse, {bb, h, row}), shared[QueryLse], {t}, first);
      L.store(L.f32(1), shared[QueryWeight], {t}, first);
      SmallVector<Value> dot = loop(
          d, {L.f32(0)}, [&](Value e, ValueRange sum) -> SmallVector<Value> {
            return {fadd(sum[0], fmul(loadF32(k.resultGrad, {bb, h, row, e}),
                                      loadF32(k.out, {bb, h, row, e})))};
          });
      L.store(dot[0], shared[QueryDelta], {t}, first);
    } else {
      auto [round, within] = split(slot);
      Value pos = L.load(k.perm, {bb, h, round, within});
      Value row = L.toIndex(pos);
      L.store(pos, shared[QueryPos], {t}, first);
      L.store(L.load(k.lse, {bb, h, round, row}), shared[QueryLse], {t}, first);
      L.store(L.load(k.weights, {bb, h, round, row}), shared[QueryWeight], {t},
              first);
      L.store(L.load(k.outDot, {bb, h, row}), shared[QueryDelta], {t}, first);
    }
    L.barrier();
    auto rowOf = [&](Value query) {
      return L.toIndex(L.load(shared[QueryPos], {query}));
    };
    forEachWord(nq * d / 2, [&](Value word, Value valid) {
      Value query = L.div(word, d / 2), pair = L.rem(word, d / 2);
      Value r = rowOf(query), col = L.mul(pair, 2);
      for (auto [from, to] : {std::pair(k.queries, shared[Queries]),
                              std::pair(k.resultGrad, shared[Grads])})
        L.store(L.packBf16(loadF32(from, {bb, h, r, col}),
                           loadF32(from, {bb, h, r, L.add(col, 1)})),
                to, {query, pair}, valid);
    });
    forEachWord(d * nq / 2, [&](Value word, Value valid) {
      Value e = L.rem(word, d), pair = L.div(word, d);
      Value r0 = rowOf(L.mul(pair, 2)), r1 = rowOf(L.add(L.mul(pair, 2), 1));
      for (auto [from, to] : {std::pair(k.queries, shared[QueriesT]),
                              std::pair(k.resultGrad, shared[GradsT])})
        L.store(L.packBf16(loadF32(from, {bb, h, r0, e}),
                           loadF32(from, {bb, h, r1, e})),
                to, {e, pair}, valid);
    });
    L.barrier();
  }

  /// Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for the warp's 16 keys and the tile's
  /// queries (B fragments from the [query][d pairs] tiles), in score
  /// fragment layout.
  std::pair<SmallVector<SmallVector<Value, 4>>,
            SmallVector<SmallVector<Value, 4>>>
  scoresAndProbabilityGrads() {
    int64_t nq = k.queryTile();
    SmallVector<Value> init(2 * (nq / 8) * 4, L.f32(0));
    SmallVector<Value> out = loop(
        k.dim / 16, init, [&](Value ks, ValueRange acc) -> SmallVector<Value> {
          SmallVector<Value> next(acc);
          for (auto [tile, rows, base] :
               {std::tuple(shared[Queries], k.keys, 0),
                std::tuple(shared[Grads], k.values, 1)}) {
            SmallVector<Value> a =
                rowFragment(rows, ks, tile == shared[Queries]);
            for (int64_t nt = 0; nt < nq / 8; ++nt) {
              // B fragment: query 8·nt + group, d pairs at 2·inGroup (+8).
              SmallVector<Value> words;
              for (int64_t reg = 0; reg < 2; ++reg)
                words.push_back(L.load(
                    tile, {L.add(group, 8 * nt),
                           L.add(L.add(inGroup, L.mul(ks, 8)), 4 * reg)}));
              int64_t at = 4 * (base * (nq / 8) + nt);
              SmallVector<Value, 4> c(ArrayRef<Value>(next).slice(at, 4));
              c = L.mma(a, words, c);
              for (int64_t v = 0; v < 4; ++v)
                next[at + v] = c[v];
            }
          }
          return next;
        });
    SmallVector<SmallVector<Value, 4>> s(nq / 8), dp(nq / 8);
    for (int64_t nt = 0; nt < nq / 8; ++nt) {
      s[nt].assign(out.begin() + 4 * nt, out.begin() + 4 * nt + 4);
      dp[nt].assign(out.begin() + 4 * (nq / 8 + nt),
                    out.begin() + 4 * (nq / 8 + nt) + 4);
    }
    return {s, dp};
  }

  /// The score-layout fragments `s` (16 keys × queries) as bf16 A
  /// fragments, one group of 4 words per 16 queries.
  SmallVector<Value> packScores(ArrayRef<SmallVector<Value, 4>> s) {
    SmallVector<Value> a;
    for (size_t j = 0; j < s.size() / 2; ++j)
      a.append({L.packBf16(s[2 * j][0], s[2 * j][1]),
                L.packBf16(s[2 * j][2], s[2 * j][3]),
                L.packBf16(s[2 * j + 1][0], s[2 * j + 1][1]),
                L.packBf16(s[2 * j + 1][2], s[2 * j + 1][3])});
    return a;
  }

  /// acc[d/8 fragments] += (16 keys × queries, packed A fragments `a`) ·
  /// (queries × d, `transposed` as [d][query pairs]).
  void addKeysByD(ArrayRef<Value> a, Value transposed,
                  MutableArrayRef<Value> acc) {
    int64_t d = k.dim, nq = k.queryTile();
    for (int64_t j = 0; j < nq / 16; ++j)
      for (int64_t nd = 0; nd < d / 8; ++nd) {
        SmallVector<Value> words;
        for (int64_t reg = 0; reg < 2; ++reg)
          words.push_back(
              L.load(transposed,
                     {L.add(group, 8 * nd), L.add(inGroup, 8 * j + 4 * reg)}));
        SmallVector<Value, 4> c(acc.slice(4 * nd, 4));
        c = L.mma(a.slice(4 * j, 4), words, c);
        for (int64_t v = 0; v < 4; ++v)
          acc[4 * nd + v] = c[v];
      }
  }

  /// One query tile against the warp's keys; `acc` holds dK then dV.
  void attendQueries(SmallVector<Value> &acc) {
    int64_t d = k.dim, nq = k.queryTile(), kt = k.keyTile();
    auto [s, dp] = scoresAndProbabilityGrads();
    auto ds = s;
    // A query all of whose keys are masked (a padding query whose window
    // holds only padding) has a log-sum-exp near the masked score, too
    // coarse in f32 to give its probabilities: it gets no gradient.
    Value live = L.f32(0.5 * k.w.maskedScore);
    for (int64_t nt = 0; nt < nq / 8; ++nt)
      for (int64_t v = 0; v < 4; ++v) {
        Value query = L.add(L.mul(inGroup, 2), 8 * nt + v % 2);
        Value qpos = L.load(shared[QueryPos], {query});
        Value kpos = keyPos[v / 2];
        // The forward's score, masks added in the forward's order.
        Value x = fadd(s[nt][v], keyBias[v / 2]);
        auto addIf = [&](arith::CmpIPredicate predicate, double score) {
          x = L.select(cmp(predicate, kpos, qpos), fadd(x, L.f32(score)), x);
        };
        if (k.w.causal)
          addIf(arith::CmpIPredicate::sgt, k.w.maskedScore);
        if (!k.local)
          addIf(arith::CmpIPredicate::eq, k.w.selfScore);
        Value lse = L.load(shared[QueryLse], {query});
        Value p = fmul(math::ExpOp::create(b, loc, fsub(x, lse)),
                       L.load(shared[QueryWeight], {query}));
        p = L.select(
            arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, lse, live),
            p, L.f32(0));
        s[nt][v] = p;
        ds[nt][v] =
            fmul(p, fsub(dp[nt][v], L.load(shared[QueryDelta], {query})));
      }
    // dS to shared memory as [query][key pairs]: a thread holds two queries
    // of one key; the threads of keys 2m and 2m+1 (lanes 4 apart) swap one
    // value each, so each holds one query of both keys.
    Value even = cmp(arith::CmpIPredicate::eq, L.rem(group, 2), L.index(0));
    for (int64_t nt = 0; nt < nq / 8; ++nt)
      for (int64_t r = 0; r < 2; ++r) {
        Value mine0 = ds[nt][2 * r], mine1 = ds[nt][2 * r + 1];
        Value theirs = L.shuffleXor(L.select(even, mine1, mine0), 4);
        Value low = L.select(even, mine0, theirs);
        Value high = L.select(even, theirs, mine1);
        Value query = L.add(L.mul(inGroup, 2), 8 * nt);
        query = L.select(even, query, L.add(query, 1));
        Value pair =
            L.add(L.add(L.mul(warp, kRowsPerWarp / 2), L.div(group, 2)), 4 * r);
        L.store(L.packBf16(low, high), shared[ScoreGrads], {query, pair});
      }
    // Only bf16 pairs stay live across the products (registers).
    SmallVector<Value> pFrags = packScores(s), dsFrags = packScores(ds);
    MutableArrayRef<Value> dk(acc.data(), 4 * (d / 8)),
        dv(acc.data() + 4 * (d / 8), 4 * (d / 8));
    addKeysByD(pFrags, shared[GradsT], dv);
    addKeysByD(dsFrags, shared[QueriesT], dk);
    L.barrier();

    // dQ = dS·K over the tile's keys: the warps share the 16 × 8 tiles.
    int64_t tiles = nq / 16 * (d / 8), warps = k.warps();
    loop(tiles / warps, {}, [&](Value j, ValueRange) -> SmallVector<Value> {
      Value t = L.add(warp, L.mul(j, warps));
      Value mt = L.div(t, d / 8), nd = L.rem(t, d / 8);
      Value rowBase = L.add(L.mul(mt, 16), group);
      Value colBase = L.mul(nd, 8);
      SmallVector<Value> c = loop(
          kt / 16, SmallVector<Value>(4, L.f32(0)),
          [&](Value ks, ValueRange acc) -> SmallVector<Value> {
            Value pair = L.add(inGroup, L.mul(ks, 8));
            SmallVector<Value> a, words;
            for (int64_t reg = 0; reg < 4; ++reg)
              a.push_back(
                  L.load(shared[ScoreGrads], {L.add(rowBase, 8 * (reg % 2)),
                                              L.add(pair, 4 * (reg / 2))}));
            for (int64_t reg = 0; reg < 2; ++reg)
              words.push_back(L.load(shared[KeysT], {L.add(colBase, group),
                                                     L.add(pair, 4 * reg)}));
            SmallVector<Value> c(acc);
            auto next = L.mma(a, words, c);
            return SmallVector<Value>(next.begin(), next.end());
          });
      for (int64_t v = 0; v < 4; ++v) {
        Value row =
            L.toIndex(L.load(shared[QueryPos], {L.add(rowBase, 8 * (v / 2))}));
        Value col = L.add(colBase, L.add(L.mul(inGroup, 2), v % 2));
        L.atomicAdd(c[v], k.dq, {bb, h, row, col});
      }
      return SmallVector<Value>();
    });
  }

  LaneBuilder &L;
  OpBuilder &b;
  Location loc;
  const GradBlocks &k;
  Value bb, h, tid, warp, group, inGroup;
  SmallVector<Value> shared; ///< Indexed by Shared.
  Value keyPos[2], keyRow[2], keyBias[2], keyScale[2];
};

} // namespace

bool reformer::lowerAttentionGrad(func::FuncOp function, bool emulate) {
  std::optional<GradBlocks> k = matchGradBlocks(function);
  if (!k)
    return false;
  OpBuilder b = clearBody(function);
  // Local attention: its outputs and log-sum-exps first.
  if (k->local)
    appendLocalForward(b, function, "stats_mma", k->queries, k->keys, k->values,
                       k->mask, k->out, k->lse, k->w, k->keyScale, emulate);
  int64_t keyTiles = k->rounds * k->len / k->keyTile();
  appendKernel(
      b, function, "mma", {keyTiles, k->heads, k->batch}, k->threads(),
      k->shared(b), emulate,
      [&](LaneBuilder &lanes, ValueRange ids, Value tid, ValueRange shared) {
        GradEmitter(lanes, *k).emit(ids[0], ids[1], ids[2], tid, shared);
      });
  func::ReturnOp::create(b, function.getLoc());
  return true;
}
