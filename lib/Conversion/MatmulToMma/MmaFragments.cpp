//===- MmaFragments.cpp - Register layouts of mma.sync m16n8k16 -----------===//

#include "reformer/Conversion/MmaFragments.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/AffineExpr.h"

using namespace mlir;

// Lanes form 8 groups of 4: the group picks the row (A, accumulator) or the
// column (B) inside an 8-row block, the lane's place in its group picks a
// pair of consecutive k (A, B) or columns (accumulator).

AffineMap reformer::getMmaOperandAMap(MLIRContext *context) {
  AffineExpr lane, reg, half;
  bindDims(context, lane, reg, half);
  // Registers 0..3 hold the 8x8 blocks (rows 0-7, k 0-7), (rows 8-15,
  // k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
  AffineExpr row = lane.floorDiv(4) + (reg % 2) * 8;
  AffineExpr k = (lane % 4) * 2 + half + reg.floorDiv(2) * 8;
  return AffineMap::get(3, 0, {row, k}, context);
}

AffineMap reformer::getMmaOperandBMap(MLIRContext *context) {
  AffineExpr lane, reg, half;
  bindDims(context, lane, reg, half);
  // Register 0 holds k 0-7, register 1 k 8-15, of the lane group's column.
  AffineExpr k = (lane % 4) * 2 + half + reg * 8;
  AffineExpr column = lane.floorDiv(4);
  return AffineMap::get(3, 0, {k, column}, context);
}

AffineMap reformer::getMmaAccumulatorMap(MLIRContext *context) {
  AffineExpr lane, value;
  bindDims(context, lane, value);
  // Values 0, 1 in rows 0-7, values 2, 3 in rows 8-15.
  AffineExpr row = lane.floorDiv(4) + value.floorDiv(2) * 8;
  AffineExpr column = (lane % 4) * 2 + value % 2;
  return AffineMap::get(2, 0, {row, column}, context);
}

Value reformer::packBf16Pair(OpBuilder &b, Location loc, Value low,
                             Value high) {
  // arith.truncf pairs would be expanded into integer rounding code by
  // rf-expand-bf16.
  Value pair = NVVM::ConvertF32x2ToBF16x2Op::create(
      b, loc, VectorType::get({2}, b.getBF16Type()), high, low,
      /*random_bits=*/Value(), NVVM::FPRoundingMode::RN);
  Value word = vector::BitCastOp::create(
      b, loc, VectorType::get({1}, b.getI32Type()), pair);
  return vector::ExtractOp::create(b, loc, word, ArrayRef<int64_t>{0});
}

SmallVector<Value, 4> reformer::createMmaSyncBf16(OpBuilder &b, Location loc,
                                                  ValueRange a,
                                                  ValueRange bWords,
                                                  ValueRange c) {
  Type f32 = b.getF32Type();
  auto resultType =
      LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  Value d = NVVM::MmaOp::create(
      b, loc, resultType, a, bWords, c, ArrayRef<int64_t>{16, 8, 16},
      std::nullopt, std::nullopt,
      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value, 4> values;
  for (int64_t v = 0; v < 4; ++v)
    values.push_back(LLVM::ExtractValueOp::create(b, loc, d, v));
  return values;
}
