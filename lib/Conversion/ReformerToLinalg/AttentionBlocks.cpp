//===- AttentionBlocks.cpp - Pieces shared by attention blocks ------------===//

#include "AttentionBlocks.h"
#include "LoweringUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

Value lowering::scratch(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                        Type type) {
  return memref::AllocOp::create(b, MemRefType::get(shape, type),
                                 b.getI64IntegerAttr(64));
}

Value lowering::i32(ImplicitLocOpBuilder &b, Value index) {
  return arith::IndexCastOp::create(b, b.getI32Type(), index);
}

void lowering::copyRow(ImplicitLocOpBuilder &b, Value src, ValueRange srcPrefix,
                       Value dst, ValueRange dstPrefix, int64_t dim,
                       Value exists, int64_t lanes) {
  Type srcType = cast<MemRefType>(src.getType()).getElementType();
  int64_t step = dim % lanes == 0 ? lanes : 1;
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
            auto wide = VectorType::get({lanes}, lb.getF32Type());
            Value x = vector::LoadOp::create(
                lb, VectorType::get({lanes}, srcType), src, from);
            if (!srcType.isF32())
              x = arith::ExtFOp::create(lb, wide, x);
            if (exists)
              x = arith::SelectOp::create(
                  lb, exists, x,
                  vector::BroadcastOp::create(lb, wide, f32Const(lb, 0.0)));
            vector::StoreOp::create(lb, x, dst, to);
          });
}

Value lowering::positiveMod(ImplicitLocOpBuilder &b, Value a, int64_t n) {
  Value nv = indexConst(b, n);
  Value r = arith::RemSIOp::create(b, a, nv);
  Value neg =
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, r, indexConst(b, 0));
  return arith::SelectOp::create(b, neg, arith::AddIOp::create(b, r, nv), r);
}

void lowering::storeInverseNorm(ImplicitLocOpBuilder &b, Value rows, Value u,
                                Value invNorm, int64_t d, int64_t lanes) {
  Value zero = indexConst(b, 0);
  bool vectorized = d % lanes == 0;
  auto vecType = VectorType::get({lanes}, b.getF32Type());
  Value init =
      vectorized
          ? Value(vector::BroadcastOp::create(b, vecType, f32Const(b, 0.0)))
          : f32Const(b, 0.0);
  auto loop = scf::ForOp::create(
      b, zero, indexConst(b, d), indexConst(b, vectorized ? lanes : 1),
      ValueRange{init},
      [&](OpBuilder &nested, Location loc, Value e, ValueRange acc) {
        ImplicitLocOpBuilder lb(loc, nested);
        Value x =
            vectorized
                ? Value(vector::LoadOp::create(lb, vecType, rows,
                                               ValueRange{u, e}))
                : Value(memref::LoadOp::create(lb, rows, ValueRange{u, e}));
        scf::YieldOp::create(lb,
                             ValueRange{arith::AddFOp::create(
                                 lb, acc[0], arith::MulFOp::create(lb, x, x))});
      });
  Value sumSq = loop.getResult(0);
  if (vectorized)
    sumSq = vector::ReductionOp::create(b, vector::CombiningKind::ADD, sumSq,
                                        arith::FastMathFlags::reassoc);
  Value meanSq = arith::MulFOp::create(b, sumSq, f32Const(b, 1.0 / double(d)));
  Value inv = math::RsqrtOp::create(
      b, arith::AddFOp::create(b, meanSq, f32Const(b, kKeyNormEps)));
  inv = arith::MulFOp::create(b, inv, f32Const(b, 1.0 / std::sqrt(double(d))));
  memref::StoreOp::create(b, inv, invNorm, ValueRange{u});
}

Value DuplicateCount::score(ImplicitLocOpBuilder &b, Value batch, Value head,
                            Value i, Value j) const {
  // The chunk of the sorted sequence that holds position `pos` in round r.
  auto chunkOf = [&](ImplicitLocOpBuilder &ib, Value r, Value pos) -> Value {
    Value slot = arith::IndexCastOp::create(
        ib, ib.getIndexType(),
        memref::LoadOp::create(ib, inverse, ValueRange{batch, head, r, pos}));
    Value global = arith::AddIOp::create(
        ib, arith::MulIOp::create(ib, r, indexConst(ib, len)), slot);
    return arith::DivUIOp::create(ib, global, indexConst(ib, chunk));
  };
  auto outer = scf::ForOp::create(
      b, indexConst(b, 0), indexConst(b, rounds), indexConst(b, 1),
      ValueRange{indexConst(b, 0)},
      [&](OpBuilder &n1, Location l1, Value r1, ValueRange c1) {
        ImplicitLocOpBuilder b1(l1, n1);
        Value qChunk = chunkOf(b1, r1, i);
        auto inner = scf::ForOp::create(
            b1, indexConst(b1, 0), indexConst(b1, rounds), indexConst(b1, 1),
            ValueRange{c1[0]},
            [&](OpBuilder &n2, Location l2, Value r2, ValueRange c2) {
              ImplicitLocOpBuilder b2(l2, n2);
              Value diff = positiveMod(
                  b2, arith::SubIOp::create(b2, chunkOf(b2, r2, j), qChunk),
                  numChunks);
              Value meets = arith::OrIOp::create(
                  b2,
                  arith::CmpIOp::create(b2, arith::CmpIPredicate::ule, diff,
                                        indexConst(b2, after)),
                  arith::CmpIOp::create(b2, arith::CmpIPredicate::uge, diff,
                                        indexConst(b2, numChunks - before)));
              Value inc = arith::SelectOp::create(b2, meets, indexConst(b2, 1),
                                                  indexConst(b2, 0));
              scf::YieldOp::create(
                  b2, ValueRange{arith::AddIOp::create(b2, c2[0], inc)});
            });
        scf::YieldOp::create(b1, inner.getResult(0));
      });
  Value n = arith::UIToFPOp::create(
      b, b.getF32Type(),
      arith::IndexCastOp::create(b, b.getI64Type(), outer.getResult(0)));
  return arith::NegFOp::create(b, math::LogOp::create(b, n));
}

void lowering::transposeBlock(ImplicitLocOpBuilder &b, Value src, Value dst,
                              int64_t lanes) {
  ArrayRef<int64_t> shape = cast<MemRefType>(src.getType()).getShape();
  int64_t n = shape[0], m = shape[1];
  if (n % lanes != 0 || m % lanes != 0) {
    linalg::TransposeOp::create(b, src, dst, ArrayRef<int64_t>{1, 0});
    return;
  }
  auto tileType = VectorType::get({lanes, lanes}, b.getF32Type());
  SmallVector<bool> inBounds = {true, true};
  Value zero = indexConst(b, 0);
  forLoop(b, zero, indexConst(b, n), lanes,
          [&](ImplicitLocOpBuilder &ib, Value r0) {
            forLoop(ib, zero, indexConst(ib, m), lanes,
                    [&](ImplicitLocOpBuilder &lb, Value c0) {
                      Value tile = vector::TransferReadOp::create(
                          lb, tileType, src, ValueRange{r0, c0},
                          f32Const(lb, 0.0), ArrayRef<bool>(inBounds));
                      Value flipped = vector::TransposeOp::create(
                          lb, tile, ArrayRef<int64_t>{1, 0});
                      vector::TransferWriteOp::create(lb, flipped, dst,
                                                      ValueRange{c0, r0},
                                                      ArrayRef<bool>(inBounds));
                    });
          });
}

void lowering::addRow(ImplicitLocOpBuilder &b, Value src, ValueRange srcPrefix,
                      Value dst, ValueRange dstPrefix, int64_t dim,
                      double scale, int64_t lanes) {
  int64_t step = dim % lanes == 0 ? lanes : 1;
  Type f32 = b.getF32Type();
  forLoop(b, indexConst(b, 0), indexConst(b, dim), step,
          [&](ImplicitLocOpBuilder &lb, Value e) {
            SmallVector<Value> from(srcPrefix), to(dstPrefix);
            from.push_back(e);
            to.push_back(e);
            Value factor = f32Const(lb, scale);
            if (step == 1) {
              Value x = memref::LoadOp::create(lb, src, from);
              if (scale != 1.0)
                x = arith::MulFOp::create(lb, x, factor);
              Value acc = memref::LoadOp::create(lb, dst, to);
              memref::StoreOp::create(lb, arith::AddFOp::create(lb, acc, x),
                                      dst, to);
              return;
            }
            auto vec = VectorType::get({lanes}, f32);
            Value x = vector::LoadOp::create(lb, vec, src, from);
            if (scale != 1.0)
              x = arith::MulFOp::create(
                  lb, x, vector::BroadcastOp::create(lb, vec, factor));
            Value acc = vector::LoadOp::create(lb, vec, dst, to);
            vector::StoreOp::create(lb, arith::AddFOp::create(lb, acc, x), dst,
                                    to);
          });
}

std::pair<Value, Value> lowering::localKeyPosition(ImplicitLocOpBuilder &b,
                                                   Value kc, Value u,
                                                   int64_t chunk,
                                                   int64_t numChunks) {
  Value j = arith::AddIOp::create(
      b, arith::MulIOp::create(b, kc, indexConst(b, chunk)), u);
  Value exists = arith::AndIOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::sge, kc, indexConst(b, 0)),
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kc,
                            indexConst(b, numChunks)));
  return {j, exists};
}

void lowering::outlineBlocks(
    PatternRewriter &rewriter, ImplicitLocOpBuilder &b, Operation *op,
    StringRef kind, ValueRange args, StringRef attrName,
    ArrayRef<NamedAttribute> params,
    function_ref<void(ImplicitLocOpBuilder &, ValueRange)> body) {
  auto module = op->getParentOfType<ModuleOp>();
  auto caller = op->getParentOfType<func::FuncOp>();
  std::string prefix =
      (caller ? caller.getSymName().str() + "_" : std::string()) + kind.str() +
      "_";
  std::string name;
  for (int n = 0;; ++n) {
    name = prefix + std::to_string(n);
    if (!module.lookupSymbol(name))
      break;
  }
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToEnd(module.getBody());
  auto type = rewriter.getFunctionType(TypeRange(args), {});
  auto function = func::FuncOp::create(rewriter, op->getLoc(), name, type);
  function.setPrivate();
  function->setAttr(attrName, rewriter.getDictionaryAttr(params));
  SmallVector<Location> locs(args.size(), op->getLoc());
  Block *entry =
      rewriter.createBlock(&function.getBody(), {}, TypeRange(args), locs);
  {
    OpBuilder::InsertionGuard inner(rewriter);
    rewriter.setInsertionPointToStart(entry);
    ImplicitLocOpBuilder fb(op->getLoc(), rewriter);
    body(fb, entry->getArguments());
    func::ReturnOp::create(fb);
  }
  // `b` keeps its own insertion point: at the op.
  func::CallOp::create(b, function, args);
}

SmallVector<NamedAttribute> lowering::windowParams(Builder &b, int64_t chunk,
                                                   int64_t before,
                                                   int64_t after, bool causal) {
  return {b.getNamedAttr("chunk_len", b.getI64IntegerAttr(chunk)),
          b.getNamedAttr("chunks_before", b.getI64IntegerAttr(before)),
          b.getNamedAttr("chunks_after", b.getI64IntegerAttr(after)),
          b.getNamedAttr("causal", b.getBoolAttr(causal)),
          b.getNamedAttr("masked_score", b.getF64FloatAttr(kMaskedScore))};
}
