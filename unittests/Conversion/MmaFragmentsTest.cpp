//===- MmaFragmentsTest.cpp - mma.sync m16n8k16 register layouts ----------===//
//
// The layouts the tensor-core matmuls load their registers with, against
// the PTX ISA's fragment tables for mma.m16n8k16 (.bf16 A and B, .f32
// accumulators), stated here in the ISA's own terms: groupID = lane >> 2,
// threadID_in_group = lane % 4, and element a_i of A sits in register i / 2,
// half i % 2.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/MmaFragments.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

using namespace mlir;

namespace {

std::pair<int64_t, int64_t> evaluate(AffineMap map,
                                     ArrayRef<int64_t> operands) {
  SmallVector<int64_t> result = map.compose(operands);
  EXPECT_EQ(result.size(), 2u);
  return {result[0], result[1]};
}

TEST(MmaFragments, OperandAMatchesTheIsaTable) {
  MLIRContext context;
  AffineMap map = reformer::getMmaOperandAMap(&context);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (int64_t lane = 0; lane < 32; ++lane)
    for (int64_t i = 0; i < 8; ++i) {
      int64_t group = lane >> 2, inGroup = lane % 4;
      int64_t row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
      int64_t col = inGroup * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      auto [r, c] = evaluate(map, {lane, i / 2, i % 2});
      EXPECT_EQ(r, row) << "lane " << lane << " a" << i;
      EXPECT_EQ(c, col) << "lane " << lane << " a" << i;
      seen.insert({r, c});
    }
  EXPECT_EQ(seen.size(), 16u * 16u); // every element of the tile, once
}

TEST(MmaFragments, OperandBMatchesTheIsaTable) {
  MLIRContext context;
  AffineMap map = reformer::getMmaOperandBMap(&context);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (int64_t lane = 0; lane < 32; ++lane)
    for (int64_t i = 0; i < 4; ++i) {
      int64_t group = lane >> 2, inGroup = lane % 4;
      int64_t k = inGroup * 2 + (i & 1) + (i >= 2 ? 8 : 0);
      auto [r, c] = evaluate(map, {lane, i / 2, i % 2});
      EXPECT_EQ(r, k) << "lane " << lane << " b" << i;
      EXPECT_EQ(c, group) << "lane " << lane << " b" << i;
      seen.insert({r, c});
    }
  EXPECT_EQ(seen.size(), 16u * 8u);
}

TEST(MmaFragments, AccumulatorMatchesTheIsaTable) {
  MLIRContext context;
  AffineMap map = reformer::getMmaAccumulatorMap(&context);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (int64_t lane = 0; lane < 32; ++lane)
    for (int64_t i = 0; i < 4; ++i) {
      int64_t group = lane >> 2, inGroup = lane % 4;
      auto [r, c] = evaluate(map, {lane, i});
      EXPECT_EQ(r, i < 2 ? group : group + 8) << "lane " << lane << " c" << i;
      EXPECT_EQ(c, inGroup * 2 + (i & 1)) << "lane " << lane << " c" << i;
      seen.insert({r, c});
    }
  EXPECT_EQ(seen.size(), 16u * 8u);
}

// The lowering loads a register as one 32-bit word of a row of bf16 pairs
// of consecutive k: half 1 must be half 0's neighbour, at an even k.
TEST(MmaFragments, RegisterHalvesAreConsecutiveK) {
  MLIRContext context;
  AffineMap a = reformer::getMmaOperandAMap(&context);
  AffineMap b = reformer::getMmaOperandBMap(&context);
  for (int64_t lane = 0; lane < 32; ++lane) {
    for (int64_t reg = 0; reg < 4; ++reg) {
      auto [row0, k0] = evaluate(a, {lane, reg, 0});
      auto [row1, k1] = evaluate(a, {lane, reg, 1});
      EXPECT_EQ(row0, row1);
      EXPECT_EQ(k0 % 2, 0);
      EXPECT_EQ(k1, k0 + 1);
    }
    for (int64_t reg = 0; reg < 2; ++reg) {
      auto [k0, col0] = evaluate(b, {lane, reg, 0});
      auto [k1, col1] = evaluate(b, {lane, reg, 1});
      EXPECT_EQ(col0, col1);
      EXPECT_EQ(k0 % 2, 0);
      EXPECT_EQ(k1, k0 + 1);
    }
  }
}

} // namespace
