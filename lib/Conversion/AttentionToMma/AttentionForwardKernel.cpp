//===- AttentionForwardKernel.cpp - Fused LSH and local attention --------===//
//
// The forward of one LSH or local attention as one kernel,
// FlashAttention-2 style: a GPU block per (batch, head, query chunk), 16
// query rows per warp. Per tile of keys of the window the block gathers the
// key rows (normalized for LSH) and value rows into shared memory as bf16;
// each warp computes its scores with mma.sync, masks them, keeps a running
// row maximum and sum (online softmax) and adds P·V with mma.sync, P
// re-packed from the score registers. No score leaves the registers;
// outputs (and log-sum-exps) are written once at the end.
//
//===----------------------------------------------------------------------===//

#include "AttentionKernels.h"

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// One attention's shape and semantics, from the function's arguments and
/// attribute. LSH blocks read sorted positions (`perm`), wrap around the
/// sorted sequence, normalize the shared query/key rows into keys, mask
/// each query's own key and write log-sum-exps; local blocks read
/// positions in order, with keys absent past the sequence's ends.
struct Blocks : AttentionShape {
  Value queries, keys, values, perm, mask, out, lse;
  int64_t chunk, before, after;
  bool local, causal, sequenceOrder;
  double maskedScore, selfScore, keyNormEps;
  /// Local keys that arrive unscaled are scaled as they are gathered.
  double keyScale = 1.0;

  int64_t numChunks() const { return rounds * len / chunk; }
  int64_t keyTile() const { return std::min(chunk, kMaxKeyTile); }
  int64_t threads() const { return chunk / kRowsPerWarp * kWarpSize; }
  int64_t sharedBytes() const {
    int64_t kt = keyTile();
    return 4 * (kt * (dim / 2 + kPadWords) + dim * (kt / 2 + kPadWords) +
                3 * kt + chunk);
  }
  /// Warps of 16 query rows; keys in tiles of at most 64; one mma k-step
  /// per 16 of the head dimension, at most 128 (the registers of one row
  /// block: 64 output and 32 query values per thread).
  bool fits() const {
    return chunk % kRowsPerWarp == 0 && chunk <= 128 &&
           chunk % keyTile() == 0 && dim % 16 == 0 && dim <= 128 &&
           (rounds * len) % chunk == 0 && sharedBytes() <= kSharedLimitBytes;
  }
};

/// The blocks of `function`, or nullopt when the kernel does not apply
/// (the loop body stays).
std::optional<Blocks> matchBlocks(func::FuncOp function) {
  Blocks k;
  auto params =
      function->getAttrOfType<DictionaryAttr>(kLshAttentionBlockAttrName);
  k.local = !params;
  if (k.local)
    params =
        function->getAttrOfType<DictionaryAttr>(kLocalAttentionBlockAttrName);
  if (!params || function.isExternal())
    return std::nullopt;
  auto args = function.getArguments();
  if (!k.local) {
    // Queries (also the keys), values, permutation, mask?, outputs, lse.
    if (args.size() != 5 && args.size() != 6)
      return std::nullopt;
    k.queries = k.keys = args[0];
    k.values = args[1];
    k.perm = args[2];
    k.mask = args.size() == 6 ? args[3] : Value();
    k.out = args[args.size() - 2];
    k.lse = args.back();
  } else {
    // Queries, keys, values, mask?, outputs.
    if (args.size() != 4 && args.size() != 5)
      return std::nullopt;
    k.queries = args[0];
    k.keys = args[1];
    k.values = args[2];
    k.mask = args.size() == 5 ? args[3] : Value();
    k.out = args.back();
  }
  std::optional<WindowParams> window = parseWindowParams(params, !k.local);
  auto order = params.getAs<BoolAttr>("sequence_order");
  if (!window || (!k.local && !order))
    return std::nullopt;
  k.chunk = window->chunk;
  k.before = window->before;
  k.after = window->after;
  k.causal = window->causal;
  k.maskedScore = window->maskedScore;
  k.selfScore = window->selfScore;
  k.keyNormEps = window->keyNormEps;
  k.sequenceOrder = k.local || order.getValue();
  for (Value arg : args)
    if (!hasStaticStrides(arg))
      return std::nullopt;
  std::optional<AttentionShape> shape = attentionShape(k.queries, k.perm);
  if (!shape)
    return std::nullopt;
  static_cast<AttentionShape &>(k) = *shape;
  // The shapes the op verifiers guarantee, checked again: a hand-written
  // tagged function must not become out-of-bounds accesses.
  auto shaped = [](Value v, ArrayRef<int64_t> shape, Type element = {}) {
    auto type = cast<MemRefType>(v.getType());
    return type.getShape() == shape &&
           (!element || type.getElementType() == element);
  };
  Builder types(function.getContext());
  SmallVector<int64_t> rows = {k.batch, k.heads, k.len, k.dim};
  SmallVector<int64_t> outShape = rows;
  if (!k.local)
    outShape.insert(outShape.begin() + 2, k.rounds);
  if (!shaped(k.keys, rows) || !shaped(k.values, rows) ||
      !shaped(k.out, outShape) ||
      (k.mask && !shaped(k.mask, {k.batch, k.len}, types.getI1Type())) ||
      (k.perm && !shaped(k.perm, {k.batch, k.heads, k.rounds, k.len},
                         types.getI32Type())) ||
      (k.lse &&
       !shaped(k.lse, {k.batch, k.heads, k.rounds, k.len}, types.getF32Type())))
    return std::nullopt;
  auto isFloat = [](Value v) {
    Type t = cast<MemRefType>(v.getType()).getElementType();
    return t.isF32() || t.isBF16();
  };
  if (!k.fits() || !isFloat(k.queries) || !isFloat(k.keys) ||
      !isFloat(k.values) || !isFloat(k.out))
    return std::nullopt;
  return k;
}

/// Emits the kernel of `k` for one block (batch `bb`, head `h`, query
/// chunk `qc`), with thread id `tid` and shared buffers `tiles`.
class KernelEmitter {
public:
  KernelEmitter(LaneBuilder &lanes, const Blocks &k) : L(lanes), k(k) {}

  void emit(Value bb, Value h, Value qc, Value tid, ValueRange tiles) {
    OpBuilder &b = L.builder();
    Location loc = L.location();
    this->bb = bb;
    this->h = h;
    kTile = tiles[0];
    vTile = tiles[1];
    kposTile = tiles[2];
    kscaleTile = tiles[3];
    kbiasTile = tiles[4];
    qposTile = tiles[5];
    int64_t c = k.chunk, d = k.dim;
    Value warp = L.div(tid, kWarpSize), lane = L.rem(tid, kWarpSize);
    group = L.div(lane, 4);
    inGroup = L.rem(lane, 4);

    // The chunk's query positions, then each warp's rows and fragments.
    Value t = L.rem(tid, c);
    Value slot = L.add(L.mul(qc, c), t);
    Value position =
        k.local
            ? L.toI32(slot)
            : L.load(k.perm, {bb, h, L.div(slot, k.len), L.rem(slot, k.len)});
    L.store(position, qposTile, {t}, L.lessThan(tid, c));
    L.barrier();
    for (int64_t r = 0; r < 2; ++r) {
      rows[r] = L.add(L.mul(warp, kRowsPerWarp), L.add(group, 8 * r));
      qpos[r] = L.load(qposTile, {rows[r]});
    }
    for (int64_t ks = 0; ks < d / 16; ++ks)
      for (int64_t reg = 0; reg < 4; ++reg) {
        // A fragment: rows group (+8 for odd registers), k pairs at
        // 2·inGroup (+8 for the upper two registers).
        Value row = L.toIndex(qpos[reg % 2]);
        Value col = L.add(L.mul(inGroup, 2), 16 * ks + 8 * (reg / 2));
        qFrags.push_back(
            L.packBf16(loadF32(k.queries, {bb, h, row, col}),
                       loadF32(k.queries, {bb, h, row, L.add(col, 1)})));
      }

    // Online softmax over the window's key tiles.
    int64_t keyTiles = (k.before + 1 + k.after) * c / k.keyTile();
    SmallVector<Value> init(d / 8 * 4, L.f32(0));
    Value negInf = L.f32(-std::numeric_limits<double>::infinity());
    init.append({negInf, negInf, L.f32(0), L.f32(0)});
    auto loop =
        scf::ForOp::create(b, loc, arith::ConstantIndexOp::create(b, loc, 0),
                           arith::ConstantIndexOp::create(b, loc, keyTiles),
                           arith::ConstantIndexOp::create(b, loc, 1), init);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      SmallVector<Value> state(loop.getRegionIterArgs());
      gatherKeyTile(qc, loop.getInductionVar(), tid);
      attendTile(state);
      L.barrier(); // the next tile overwrites the shared buffers
      scf::YieldOp::create(b, loc, state);
    }
    writeRows(qc, loop.getResults());
  }

private:
  Value loadF32(Value memref, ValueRange indices) {
    Value x = L.load(memref, indices);
    if (getElementTypeOrSelf(x.getType()).isF32())
      return x;
    return arith::ExtFOp::create(L.builder(), L.location(),
                                 L.laneType(L.builder().getF32Type()), x);
  }
  Value fadd(Value x, Value y) {
    return arith::AddFOp::create(L.builder(), L.location(), x, y);
  }
  Value fmul(Value x, Value y) {
    return arith::MulFOp::create(L.builder(), L.location(), x, y);
  }
  Value fmax(Value x, Value y) {
    return arith::MaximumFOp::create(L.builder(), L.location(), x, y);
  }
  Value exp(Value x) {
    return math::ExpOp::create(L.builder(), L.location(), x);
  }

  /// Positions, biases and key normalizations of key tile `tile` of the
  /// window, then its keys (normalized, rows of d/2 words) and values
  /// (transposed: rows of key pairs) as bf16 in shared memory.
  void gatherKeyTile(Value qc, Value tile, Value tid) {
    OpBuilder &b = L.builder();
    Location loc = L.location();
    int64_t c = k.chunk, d = k.dim, kt = k.keyTile(), n = k.threads();
    Value u = L.rem(tid, kt);
    Value inWindow = L.add(L.mul(tile, kt), u);
    Value kc = L.sub(L.add(qc, L.div(inWindow, c)), L.index(k.before));
    Value pos, row, exists;
    if (!k.local) {
      // The sorted sequence wraps around: every key exists.
      Value slot =
          L.add(L.mul(L.positiveMod(kc, k.numChunks()), c), L.rem(inWindow, c));
      pos = L.load(k.perm, {bb, h, L.div(slot, k.len), L.rem(slot, k.len)});
      row = L.toIndex(pos);
    } else {
      // Chunks past the sequence's ends have no keys: position -1.
      exists = arith::AndIOp::create(
          b, loc,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, kc,
                                L.index(0)),
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, kc,
                                L.index(k.numChunks())));
      row = arith::SelectOp::create(
          b, loc, exists, L.add(L.mul(kc, c), L.rem(inWindow, c)), L.index(0));
      pos = arith::SelectOp::create(b, loc, exists, L.toI32(row), L.i32(-1));
    }
    Value bias = L.f32(0);
    if (k.mask)
      bias = arith::SelectOp::create(b, loc, L.load(k.mask, {bb, row}), bias,
                                     L.f32(k.maskedScore));
    if (exists)
      bias = arith::SelectOp::create(
          b, loc, exists, bias,
          L.f32(-std::numeric_limits<double>::infinity()));
    // Local keys arrive scaled; LSH keys are normalized rows.
    Value scale;
    if (!k.local) {
      // The key is the row scaled by 1/sqrt(mean(x²) + eps)/sqrt(d).
      auto sumSq = scf::ForOp::create(
          b, loc, arith::ConstantIndexOp::create(b, loc, 0),
          arith::ConstantIndexOp::create(b, loc, d),
          arith::ConstantIndexOp::create(b, loc, 1), ValueRange{L.f32(0)});
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(sumSq.getBody());
        Value x = loadF32(k.keys, {bb, h, row, sumSq.getInductionVar()});
        scf::YieldOp::create(b, loc,
                             fadd(sumSq.getRegionIterArgs()[0], fmul(x, x)));
      }
      Value meanSq = fmul(sumSq.getResult(0), L.f32(1.0 / double(d)));
      scale =
          fmul(math::RsqrtOp::create(b, loc, fadd(meanSq, L.f32(k.keyNormEps))),
               L.f32(1.0 / std::sqrt(double(d))));
    }
    Value first = L.lessThan(tid, kt);
    // Absent keys (position -1) read row 0: their scores are -inf.
    auto keyRowAt = [&](Value key) {
      return L.toIndex(
          arith::MaxSIOp::create(b, loc, L.load(kposTile, {key}), L.i32(0)));
    };
    L.store(pos, kposTile, {u}, first);
    L.store(bias, kbiasTile, {u}, first);
    if (scale)
      L.store(scale, kscaleTile, {u}, first);
    L.barrier();

    for (int64_t i = 0; i < kt * d / 2 / n; ++i) {
      Value word = L.add(tid, i * n);
      Value key = L.div(word, d / 2), pair = L.rem(word, d / 2);
      Value keyRow = keyRowAt(key);
      Value s = scale               ? L.load(kscaleTile, {key})
                : k.keyScale != 1.0 ? L.f32(k.keyScale)
                                    : Value();
      auto keyAt = [&](Value col) {
        Value x = loadF32(k.keys, {bb, h, keyRow, col});
        return s ? fmul(x, s) : x;
      };
      Value col = L.mul(pair, 2);
      L.store(L.packBf16(keyAt(col), keyAt(L.add(col, 1))), kTile, {key, pair});
    }
    for (int64_t i = 0; i < d * kt / 2 / n; ++i) {
      Value word = L.add(tid, i * n);
      Value e = L.rem(word, d), pair = L.div(word, d);
      Value key0 = L.mul(pair, 2);
      Value row0 = keyRowAt(key0);
      Value row1 = keyRowAt(L.add(key0, 1));
      L.store(L.packBf16(loadF32(k.values, {bb, h, row0, e}),
                         loadF32(k.values, {bb, h, row1, e})),
              vTile, {e, pair});
    }
    L.barrier();
  }

  /// One key tile for the warp's 16 rows: scores, masks, the online
  /// softmax update and P·V. `state` holds the d/8 output fragments, then
  /// the two rows' running maxima and (per-thread partial) sums.
  void attendTile(SmallVector<Value> &state) {
    OpBuilder &b = L.builder();
    Location loc = L.location();
    int64_t d = k.dim, kt = k.keyTile();
    int64_t outValues = d / 8 * 4;
    // Scores: kt/8 fragments of 16 x 8.
    SmallVector<SmallVector<Value, 4>> s(kt / 8);
    for (auto &frag : s)
      frag.assign(4, L.f32(0));
    for (int64_t ks = 0; ks < d / 16; ++ks)
      for (int64_t nt = 0; nt < kt / 8; ++nt) {
        // B fragment: key 8·nt + group, d pairs at 2·inGroup (+8).
        SmallVector<Value> words;
        for (int64_t reg = 0; reg < 2; ++reg)
          words.push_back(L.load(
              kTile, {L.add(group, 8 * nt), L.add(inGroup, 8 * ks + 4 * reg)}));
        s[nt] = L.mma(ArrayRef<Value>(qFrags).slice(4 * ks, 4), words, s[nt]);
      }

    // Masks, and the rows' maxima over the tile.
    Value tileMax[2] = {L.f32(-std::numeric_limits<double>::infinity()),
                        L.f32(-std::numeric_limits<double>::infinity())};
    for (int64_t nt = 0; nt < kt / 8; ++nt)
      for (int64_t v = 0; v < 4; ++v) {
        Value col = L.add(L.mul(inGroup, 2), 8 * nt + v % 2);
        Value kp = L.load(kposTile, {col});
        Value x = fadd(s[nt][v], L.load(kbiasTile, {col}));
        auto addIf = [&](arith::CmpIPredicate predicate, double score) {
          Value hit = arith::CmpIOp::create(b, loc, predicate, kp, qpos[v / 2]);
          x = arith::SelectOp::create(b, loc, hit, fadd(x, L.f32(score)), x);
        };
        if (k.causal)
          addIf(arith::CmpIPredicate::sgt, k.maskedScore);
        if (!k.local)
          addIf(arith::CmpIPredicate::eq, k.selfScore);
        s[nt][v] = x;
        tileMax[v / 2] = fmax(tileMax[v / 2], x);
      }
    Value alpha[2], base[2];
    for (int64_t r = 0; r < 2; ++r) {
      // The 4 threads of a group hold the row's columns.
      for (int64_t mask : {1, 2})
        tileMax[r] = fmax(tileMax[r], L.shuffleXor(tileMax[r], mask));
      Value &m = state[outValues + r];
      Value next = fmax(m, tileMax[r]);
      // A row with no finite score yet keeps exp(-inf - 0) = 0.
      Value none = arith::CmpFOp::create(
          b, loc, arith::CmpFPredicate::OEQ, next,
          L.f32(-std::numeric_limits<double>::infinity()));
      base[r] = arith::SelectOp::create(b, loc, none, L.f32(0), next);
      alpha[r] = exp(arith::SubFOp::create(b, loc, m, base[r]));
      m = next;
    }
    Value sums[2] = {L.f32(0), L.f32(0)};
    for (int64_t nt = 0; nt < kt / 8; ++nt)
      for (int64_t v = 0; v < 4; ++v) {
        s[nt][v] = exp(arith::SubFOp::create(b, loc, s[nt][v], base[v / 2]));
        sums[v / 2] = fadd(sums[v / 2], s[nt][v]);
      }
    for (int64_t r = 0; r < 2; ++r) {
      Value &l = state[outValues + 2 + r];
      l = fadd(fmul(l, alpha[r]), sums[r]);
    }
    for (int64_t i = 0; i < outValues; ++i)
      state[i] = fmul(state[i], alpha[(i % 4) / 2]);

    // O += P·V: the score fragments of keys 16j..16j+15 are the A fragment
    // (rows group / group+8, key pairs at 2·inGroup, +8).
    for (int64_t j = 0; j < kt / 16; ++j) {
      SmallVector<Value> p = {L.packBf16(s[2 * j][0], s[2 * j][1]),
                              L.packBf16(s[2 * j][2], s[2 * j][3]),
                              L.packBf16(s[2 * j + 1][0], s[2 * j + 1][1]),
                              L.packBf16(s[2 * j + 1][2], s[2 * j + 1][3])};
      for (int64_t nd = 0; nd < d / 8; ++nd) {
        SmallVector<Value> words;
        for (int64_t reg = 0; reg < 2; ++reg)
          words.push_back(L.load(
              vTile, {L.add(group, 8 * nd), L.add(inGroup, 8 * j + 4 * reg)}));
        SmallVector<Value, 4> acc(ArrayRef<Value>(state).slice(4 * nd, 4));
        acc = L.mma(p, words, acc);
        for (int64_t v = 0; v < 4; ++v)
          state[4 * nd + v] = acc[v];
      }
    }
  }

  /// Normalized outputs and log-sum-exps of the warp's rows.
  void writeRows(Value qc, ValueRange state) {
    OpBuilder &b = L.builder();
    Location loc = L.location();
    int64_t d = k.dim, outValues = d / 8 * 4;
    Type outType = cast<MemRefType>(k.out.getType()).getElementType();
    for (int64_t r = 0; r < 2; ++r) {
      Value l = state[outValues + 2 + r];
      for (int64_t mask : {1, 2})
        l = fadd(l, L.shuffleXor(l, mask));
      Value inv = arith::DivFOp::create(b, loc, L.f32(1), l);
      Value lse = fadd(state[outValues + r], math::LogOp::create(b, loc, l));
      Value slot = L.add(L.mul(qc, k.chunk), rows[r]);
      SmallVector<Value> at = {bb, h};
      if (!k.local) // [B, H, R, L, D]
        at.push_back(L.div(slot, k.len));
      at.push_back(k.sequenceOrder ? L.toIndex(qpos[r]) : L.rem(slot, k.len));
      for (int64_t nd = 0; nd < d / 8; ++nd)
        for (int64_t half = 0; half < 2; ++half) {
          Value x = fmul(state[4 * nd + 2 * r + half], inv);
          if (!outType.isF32())
            x = arith::TruncFOp::create(b, loc, L.laneType(outType), x);
          SmallVector<Value> indices(at);
          indices.push_back(L.add(L.mul(inGroup, 2), 8 * nd + half));
          L.store(x, k.out, indices);
        }
      if (!k.lse)
        continue;
      Value leader = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                           inGroup, L.index(0));
      L.store(lse, k.lse, at, leader);
    }
  }

  LaneBuilder &L;
  const Blocks &k;
  Value bb, h, group, inGroup;
  Value kTile, vTile, kposTile, kscaleTile, kbiasTile, qposTile;
  Value rows[2], qpos[2];
  SmallVector<Value> qFrags;
};

/// The shared buffers' shapes and element types, in KernelEmitter order.
SmallVector<std::pair<SmallVector<int64_t>, Type>>
sharedBuffers(const Blocks &k, Builder &b) {
  int64_t kt = k.keyTile();
  return {{{kt, k.dim / 2 + kPadWords}, b.getI32Type()},
          {{k.dim, kt / 2 + kPadWords}, b.getI32Type()},
          {{kt}, b.getI32Type()},
          {{kt}, b.getF32Type()},
          {{kt}, b.getF32Type()},
          {{k.chunk}, b.getI32Type()}};
}

} // namespace

bool reformer::lowerAttentionForward(func::FuncOp function, bool emulate) {
  std::optional<Blocks> k = matchBlocks(function);
  if (!k)
    return false;
  Builder b(function.getContext());
  emitKernel(
      function, {k->numChunks(), k->heads, k->batch}, k->threads(),
      sharedBuffers(*k, b), emulate,
      [&](LaneBuilder &lanes, ValueRange ids, Value tid, ValueRange shared) {
        KernelEmitter(lanes, *k).emit(ids[2], ids[1], ids[0], tid, shared);
      });
  return true;
}

/// The blocks of a local attention whose keys are scaled by `keyScale` as
/// they are gathered and which writes its log-sum-exps [B, H, L].
static Blocks localBlocks(Value queries, Value keys, Value values, Value mask,
                          Value out, Value lse, const WindowParams &window,
                          double keyScale) {
  Blocks k;
  k.queries = queries;
  k.keys = keys;
  k.values = values;
  k.mask = mask;
  k.out = out;
  k.lse = lse;
  static_cast<AttentionShape &>(k) = *attentionShape(queries, Value());
  k.chunk = window.chunk;
  k.before = window.before;
  k.after = window.after;
  k.local = true;
  k.causal = window.causal;
  k.sequenceOrder = true;
  k.maskedScore = window.maskedScore;
  k.selfScore = k.keyNormEps = 0;
  k.keyScale = keyScale;
  return k;
}

bool reformer::localForwardFits(Value queries, const WindowParams &window) {
  return localBlocks(queries, {}, {}, {}, {}, {}, window, 1.0).fits();
}

void reformer::appendLocalForward(OpBuilder &b, func::FuncOp function,
                                  StringRef name, Value queries, Value keys,
                                  Value values, Value mask, Value out,
                                  Value lse, const WindowParams &window,
                                  double keyScale, bool emulate) {
  Blocks k =
      localBlocks(queries, keys, values, mask, out, lse, window, keyScale);
  appendKernel(
      b, function, name, {k.numChunks(), k.heads, k.batch}, k.threads(),
      sharedBuffers(k, b), emulate,
      [&](LaneBuilder &lanes, ValueRange ids, Value tid, ValueRange shared) {
        KernelEmitter(lanes, k).emit(ids[2], ids[1], ids[0], tid, shared);
      });
}
