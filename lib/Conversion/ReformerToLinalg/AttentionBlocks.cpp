//===- AttentionBlocks.cpp - Pieces shared by attention blocks ------------===//

#include "AttentionBlocks.h"
#include "LoweringUtils.h"

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
                       Value exists) {
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

Value lowering::positiveMod(ImplicitLocOpBuilder &b, Value a, int64_t n) {
  Value nv = indexConst(b, n);
  Value r = arith::RemSIOp::create(b, a, nv);
  Value neg =
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, r, indexConst(b, 0));
  return arith::SelectOp::create(b, neg, arith::AddIOp::create(b, r, nv), r);
}

void lowering::storeInverseNorm(ImplicitLocOpBuilder &b, Value rows, Value u,
                                Value invNorm, int64_t d) {
  Value zero = indexConst(b, 0);
  bool vectorized = d % kLanes == 0;
  auto vecType = VectorType::get({kLanes}, b.getF32Type());
  Value init =
      vectorized
          ? Value(vector::BroadcastOp::create(b, vecType, f32Const(b, 0.0)))
          : f32Const(b, 0.0);
  auto loop = scf::ForOp::create(
      b, zero, indexConst(b, d), indexConst(b, vectorized ? kLanes : 1),
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
