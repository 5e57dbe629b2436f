//===- MmaFragments.cpp - Register layouts of mma.sync m16n8k16 -----------===//

#include "reformer/Conversion/MmaFragments.h"

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
