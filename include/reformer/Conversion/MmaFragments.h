//===- MmaFragments.h - Register layouts of mma.sync m16n8k16 ---*- C++ -*-===//
//
// A warp-wide `mma.sync.aligned.m16n8k16.row.col` spreads its 16x16 A tile,
// 16x8 B tile and 16x8 accumulator over the 32 lanes' registers in a fixed
// pattern (PTX ISA, "Matrix fragments for mma.m16n8k16"). These maps give,
// for a lane and one of its values, the element of the tile it holds; the
// tensor-core lowerings index shared memory with them, and unit tests check
// them against the ISA's tables. The two NVVM builders below are the
// instructions those lowerings share.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_CONVERSION_MMAFRAGMENTS_H
#define REFORMER_CONVERSION_MMAFRAGMENTS_H

#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"

namespace mlir::reformer {

/// (lane, register, half) -> (row, k) of the 16x16 A tile. Each of the four
/// 32-bit registers packs two bf16 values; half 0 is the low 16 bits.
AffineMap getMmaOperandAMap(MLIRContext *context);

/// (lane, register, half) -> (k, column) of the 16x8 B tile (two registers).
AffineMap getMmaOperandBMap(MLIRContext *context);

/// (lane, value) -> (row, column) of the 16x8 f32 accumulator (four values).
AffineMap getMmaAccumulatorMap(MLIRContext *context);

/// Two f32 rounded to bf16 (nearest even) and packed in one 32-bit word,
/// `low` in the low half (a fragment register's pair): one
/// cvt.rn.bf16x2.f32.
Value packBf16Pair(OpBuilder &b, Location loc, Value low, Value high);

/// D = A·B + C of one warp-wide mma.sync m16n8k16 (bf16 row × col, f32
/// accumulators): four A words, two B words, four accumulators.
SmallVector<Value, 4> createMmaSyncBf16(OpBuilder &b, Location loc,
                                        ValueRange a, ValueRange bWords,
                                        ValueRange c);

} // namespace mlir::reformer

#endif // REFORMER_CONVERSION_MMAFRAGMENTS_H
