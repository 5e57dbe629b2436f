//===- VectorizeMatmuls.cpp - The rf-vectorize-matmuls pass ---------------===//
//
// C[M, N] += A[M, K] · B[K, N], for each panel of 2·lanes columns of B:
//
//   pack   panel[k, :] = B[k, n0 : n0 + 2·lanes]     (zero past N)
//   for each block of `rows` rows:
//     acc[r][v] = C[m0 + r, n0 + v·lanes : …]        (rows × 2 registers)
//     for k:  b_v = panel[k, v·lanes : …]; acc[r][v] += A[m0 + r, k] · b_v
//     C[m0 + r, …] = acc[r][v]
//
// The accumulators stay in registers across the whole k loop; the packed
// panel streams from L1/L2 with unit stride whatever B's row stride is.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Matchers.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFVECTORIZEMATMULS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

struct KernelShape {
  int64_t m, n, k, lanes, rows;
  /// C is known to hold zeros: start from zero accumulators, skip the read.
  bool zeroInit = false;
  /// Read B's panels in place: it is small enough to stay in L1, so a
  /// packed copy would cost more than it saves.
  bool packB = true;
};

Value idx(ImplicitLocOpBuilder &b, int64_t v) {
  return arith::ConstantIndexOp::create(b, v);
}

/// One register block: `numRows` rows starting at `m0`, the panel at
/// column `n0`. `inBounds` is false for a partial last panel.
void emitBlock(ImplicitLocOpBuilder &b, const KernelShape &s, Value a,
               Value panel, Value c, Value m0, Value n0, int64_t numRows,
               bool inBounds) {
  auto vecType = VectorType::get({s.lanes}, b.getF32Type());
  Value zero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0));
  SmallVector<bool> bounds = {inBounds};
  auto rowIndex = [&](int64_t r) {
    return arith::AddIOp::create(b, m0, idx(b, r)).getResult();
  };
  auto colIndex = [&](int64_t v) {
    return arith::AddIOp::create(b, n0, idx(b, v * s.lanes)).getResult();
  };
  SmallVector<Value> init;
  Value zeros = s.zeroInit
                    ? Value(vector::BroadcastOp::create(b, vecType, zero))
                    : Value();
  for (int64_t r = 0; r < numRows; ++r)
    for (int64_t v = 0; v < 2; ++v)
      init.push_back(
          zeros ? zeros
                : Value(vector::TransferReadOp::create(
                      b, vecType, c, ValueRange{rowIndex(r), colIndex(v)}, zero,
                      ArrayRef<bool>(bounds))));
  auto loop = scf::ForOp::create(
      b, idx(b, 0), idx(b, s.k), idx(b, 1), init,
      [&](OpBuilder &nested, Location loc, Value k, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nested);
        Value bv[2];
        for (int64_t v = 0; v < 2; ++v)
          bv[v] = vector::LoadOp::create(ib, vecType, panel,
                                         ValueRange{k, idx(ib, v * s.lanes)});
        SmallVector<Value> next;
        for (int64_t r = 0; r < numRows; ++r) {
          Value row = arith::AddIOp::create(ib, m0, idx(ib, r));
          Value scalar = memref::LoadOp::create(ib, a, ValueRange{row, k});
          if (!scalar.getType().isF32())
            scalar = arith::ExtFOp::create(ib, ib.getF32Type(), scalar);
          Value splat = vector::BroadcastOp::create(ib, vecType, scalar);
          for (int64_t v = 0; v < 2; ++v)
            next.push_back(vector::FMAOp::create(ib, vecType, splat, bv[v],
                                                 acc[r * 2 + v]));
        }
        scf::YieldOp::create(ib, next);
      });
  for (int64_t r = 0; r < numRows; ++r)
    for (int64_t v = 0; v < 2; ++v)
      vector::TransferWriteOp::create(b, loop.getResult(r * 2 + v), c,
                                      ValueRange{rowIndex(r), colIndex(v)},
                                      ArrayRef<bool>(bounds));
}

/// Packs panel `jp` of B into `packed[jp]` (zeros past column N).
void emitPack(ImplicitLocOpBuilder &b, const KernelShape &s, Value bMat,
              Value packed, Value jp, bool inBounds) {
  int64_t cols = 2 * s.lanes;
  // B may be bf16 (mixed precision): read as it is, packed as f32.
  Type element = cast<MemRefType>(bMat.getType()).getElementType();
  auto vecType = VectorType::get({s.lanes}, b.getF32Type());
  auto readType = VectorType::get({s.lanes}, element);
  Value n0 = arith::MulIOp::create(b, jp, idx(b, cols));
  Value zero = arith::ConstantOp::create(b, b.getZeroAttr(element));
  SmallVector<bool> bounds = {inBounds};
  scf::ForOp::create(
      b, idx(b, 0), idx(b, s.k), idx(b, 1), ValueRange{},
      [&](OpBuilder &nested, Location loc, Value k, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nested);
        for (int64_t v = 0; v < 2; ++v) {
          Value col = arith::AddIOp::create(ib, n0, idx(ib, v * s.lanes));
          Value row = vector::TransferReadOp::create(ib, readType, bMat,
                                                     ValueRange{k, col}, zero,
                                                     ArrayRef<bool>(bounds));
          if (readType != vecType)
            row = arith::ExtFOp::create(ib, vecType, row);
          vector::StoreOp::create(ib, row, packed,
                                  ValueRange{jp, k, idx(ib, v * s.lanes)});
        }
        scf::YieldOp::create(ib);
      });
}

/// Rows [mStart, mStart + count) against every panel: `rows`-row blocks,
/// then single rows.
void emitRowRange(ImplicitLocOpBuilder &b, const KernelShape &s, Value a,
                  Value source, Value c, Value mStart, int64_t count) {
  int64_t cols = 2 * s.lanes;
  int64_t fullPanels = s.n / cols;
  auto forPanel = [&](ImplicitLocOpBuilder &pb, Value jp, bool inBounds) {
    Value n0 = arith::MulIOp::create(pb, jp, idx(pb, cols));
    // The panel as a [K, cols] view of the packed buffer, or of B itself.
    int64_t rowStride = s.packB ? cols : s.n;
    auto panelType = MemRefType::get(
        {s.k, cols}, pb.getF32Type(),
        StridedLayoutAttr::get(pb.getContext(), ShapedType::kDynamic,
                               {rowStride, 1}));
    Value panel;
    if (s.packB) {
      SmallVector<OpFoldResult> offsets = {jp, pb.getIndexAttr(0),
                                           pb.getIndexAttr(0)};
      SmallVector<OpFoldResult> sizes = {
          pb.getIndexAttr(1), pb.getIndexAttr(s.k), pb.getIndexAttr(cols)};
      SmallVector<OpFoldResult> strides(3, pb.getIndexAttr(1));
      panel = memref::SubViewOp::create(pb, panelType, source, offsets, sizes,
                                        strides);
    } else {
      SmallVector<OpFoldResult> offsets = {pb.getIndexAttr(0), n0};
      SmallVector<OpFoldResult> sizes = {pb.getIndexAttr(s.k),
                                         pb.getIndexAttr(cols)};
      SmallVector<OpFoldResult> strides(2, pb.getIndexAttr(1));
      panel = memref::SubViewOp::create(pb, panelType, source, offsets, sizes,
                                        strides);
    }
    int64_t blocks = count / s.rows;
    if (blocks > 0)
      scf::ForOp::create(
          pb, idx(pb, 0), idx(pb, blocks * s.rows), idx(pb, s.rows),
          ValueRange{},
          [&](OpBuilder &nested, Location loc, Value off, ValueRange) {
            ImplicitLocOpBuilder ib(loc, nested);
            Value m0 = arith::AddIOp::create(ib, mStart, off);
            emitBlock(ib, s, a, panel, c, m0, n0, s.rows, inBounds);
            scf::YieldOp::create(ib);
          });
    for (int64_t r = blocks * s.rows; r < count; ++r)
      emitBlock(pb, s, a, panel, c,
                arith::AddIOp::create(pb, mStart, idx(pb, r)), n0, 1, inBounds);
  };
  if (fullPanels > 0)
    scf::ForOp::create(
        b, idx(b, 0), idx(b, fullPanels), idx(b, 1), ValueRange{},
        [&](OpBuilder &nested, Location loc, Value jp, ValueRange) {
          ImplicitLocOpBuilder ib(loc, nested);
          forPanel(ib, jp, /*inBounds=*/true);
          scf::YieldOp::create(ib);
        });
  if (s.n % cols != 0)
    forPanel(b, idx(b, fullPanels), /*inBounds=*/false);
}

/// `scf.parallel` over [0, count): iterations are independent. Inside
/// another parallel loop (a chunked FFN's chunk) it is a plain loop: the
/// cores are already shared out there.
void parallelFor(ImplicitLocOpBuilder &b, int64_t count,
                 function_ref<void(ImplicitLocOpBuilder &, Value)> body) {
  Block *block = b.getInsertionBlock();
  if (block && block->getParentOp() &&
      (isa<scf::ParallelOp>(block->getParentOp()) ||
       block->getParentOp()->getParentOfType<scf::ParallelOp>())) {
    scf::ForOp::create(
        b, idx(b, 0), idx(b, count), idx(b, 1), ValueRange{},
        [&](OpBuilder &nested, Location loc, Value iv, ValueRange) {
          ImplicitLocOpBuilder ib(loc, nested);
          body(ib, iv);
          scf::YieldOp::create(ib);
        });
    return;
  }
  scf::ParallelOp::create(b, ValueRange{idx(b, 0)}, ValueRange{idx(b, count)},
                          ValueRange{idx(b, 1)},
                          [&](OpBuilder &nested, Location loc, ValueRange ivs) {
                            ImplicitLocOpBuilder ib(loc, nested);
                            body(ib, ivs[0]);
                            scf::ReduceOp::create(ib);
                          });
}

bool isF32(Value v) {
  return cast<MemRefType>(v.getType()).getElementType().isF32();
}

/// Operands may also be bf16 (mixed precision), widened as they are read.
bool isF32OrBf16(Value v) {
  return isF32(v) || cast<MemRefType>(v.getType()).getElementType().isBF16();
}

bool hasUnitInnerStride(Value v) {
  auto type = cast<MemRefType>(v.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) &&
         strides.back() == 1;
}

/// Whether `loop` only reads `buffer`: every user inside it takes it as an
/// input (a linalg input, a load, a view that is itself only read).
bool onlyReadIn(Value buffer, Operation *loop) {
  for (Operation *user : buffer.getUsers()) {
    if (!loop->isAncestor(user))
      continue;
    if (isa<memref::LoadOp, vector::LoadOp, vector::TransferReadOp>(user))
      continue;
    if (auto view = dyn_cast<memref::SubViewOp>(user))
      if (onlyReadIn(view.getResult(), loop))
        continue;
    auto linalgOp = dyn_cast<linalg::LinalgOp>(user);
    if (linalgOp && llvm::none_of(linalgOp.getDpsInits(),
                                  [&](Value v) { return v == buffer; }))
      continue;
    return false;
  }
  return true;
}

/// The outermost loop (scf.for or scf.parallel) around `op` that B does not
/// change in: packing B before it instead of at every iteration (a chunked
/// FFN multiplies by the same weights once per chunk). Null when there is
/// none.
Operation *packHoistPoint(Operation *op, Value bMat) {
  Operation *point = nullptr;
  for (Operation *parent = op->getParentOp();
       parent && isa<scf::ForOp, scf::ParallelOp>(parent);
       parent = parent->getParentOp()) {
    auto loop = cast<LoopLikeOpInterface>(parent);
    if (!loop.isDefinedOutsideOfLoop(bMat) || !onlyReadIn(bMat, parent))
      break;
    point = parent;
  }
  return point;
}

struct RfVectorizeMatmulsPass
    : reformer::impl::RfVectorizeMatmulsBase<RfVectorizeMatmulsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<linalg::MatmulOp> matmuls;
    getOperation()->walk([&](linalg::MatmulOp op) {
      if (!op.hasPureBufferSemantics() || op.hasUserDefinedMaps())
        return;
      Value a = op.getDpsInputs()[0], bMat = op.getDpsInputs()[1],
            c = op.getDpsInits()[0];
      for (Value v : {a, bMat, c})
        if (!(v == c ? isF32(v) : isF32OrBf16(v)) ||
            !cast<MemRefType>(v.getType()).hasStaticShape() ||
            !hasUnitInnerStride(v))
          return;
      matmuls.push_back(op);
    });
    for (linalg::MatmulOp op : matmuls) {
      Value a = op.getDpsInputs()[0], bMat = op.getDpsInputs()[1],
            c = op.getDpsInits()[0];
      auto aType = cast<MemRefType>(a.getType());
      auto bType = cast<MemRefType>(bMat.getType());
      KernelShape s{aType.getDimSize(0), bType.getDimSize(1),
                    aType.getDimSize(1), lanes, rows};
      // A zero fill of C right before the matmul: the kernel writes every
      // element of C, so it can start from zeros and the fill can go.
      auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode());
      if (fill && fill.hasPureBufferSemantics() && fill.getDpsInits()[0] == c &&
          matchPattern(fill.getDpsInputs()[0], m_AnyZeroFloat())) {
        s.zeroInit = true;
        fill.erase();
      }
      ImplicitLocOpBuilder b(op.getLoc(), op);
      int64_t cols = 2 * s.lanes;
      int64_t panels = (s.n + cols - 1) / cols, fullPanels = s.n / cols;
      // B packed once: [panel, k, column within the panel] — unless it is
      // whole panels of contiguous rows that fit in L1 (the attention blocks'
      // key and value tiles), which are read in place; bf16 B is always
      // packed, widened to f32.
      constexpr int64_t kL1Bytes = 32 * 1024;
      s.packB = !(s.n % cols == 0 && s.k * s.n * 4 <= kL1Bytes &&
                  bType.getLayout().isIdentity() && isF32(bMat));
      Value source = bMat;
      Operation *hoisted = s.packB ? packHoistPoint(op, bMat) : nullptr;
      if (s.packB) {
        ImplicitLocOpBuilder pb(op.getLoc(), hoisted ? hoisted : op);
        source = memref::AllocOp::create(
            pb, MemRefType::get({panels, s.k, cols}, pb.getF32Type()),
            pb.getI64IntegerAttr(64));
        if (fullPanels > 0)
          parallelFor(pb, fullPanels, [&](ImplicitLocOpBuilder &ib, Value jp) {
            emitPack(ib, s, bMat, source, jp, /*inBounds=*/true);
          });
        if (fullPanels < panels)
          emitPack(pb, s, bMat, source, idx(pb, fullPanels),
                   /*inBounds=*/false);
      }
      // Blocks of kRowBlock rows of A stay in L2 while every panel streams
      // past them; blocks are independent.
      constexpr int64_t kRowBlock = 128;
      int64_t fullRowBlocks = s.m / kRowBlock;
      if (fullRowBlocks > 0)
        parallelFor(b, fullRowBlocks, [&](ImplicitLocOpBuilder &ib, Value mb) {
          Value mStart = arith::MulIOp::create(ib, mb, idx(ib, kRowBlock));
          emitRowRange(ib, s, a, source, c, mStart, kRowBlock);
        });
      if (s.m % kRowBlock != 0)
        emitRowRange(b, s, a, source, c, idx(b, fullRowBlocks * kRowBlock),
                     s.m % kRowBlock);
      if (s.packB) {
        ImplicitLocOpBuilder db(op.getLoc(), hoisted ? hoisted : op);
        db.setInsertionPointAfter(hoisted ? hoisted : op.getOperation());
        memref::DeallocOp::create(db, source);
      }
      op.erase();
    }
  }
};

} // namespace
