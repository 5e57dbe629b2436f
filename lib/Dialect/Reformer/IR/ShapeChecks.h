//===- ShapeChecks.h - Shape checks shared by the op verifiers --*- C++ -*-===//
//
// Verifier helpers that produce uniform messages naming the operand, the
// expected shape and the shape found. Dynamic dimensions match anything.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_LIB_DIALECT_REFORMER_IR_SHAPECHECKS_H
#define REFORMER_LIB_DIALECT_REFORMER_IR_SHAPECHECKS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"

namespace mlir::reformer::detail {

/// Marks a dimension the check does not constrain.
constexpr int64_t kAnyDim = ShapedType::kDynamic;

/// Renders a shape as `[2, 4, ?]`.
std::string formatShape(ArrayRef<int64_t> shape);

/// Emits "expects <what> of shape [..], got [..]" unless `type` has the
/// expected rank and every static dimension agrees.
LogicalResult verifyShape(Operation *op, StringRef what, Type type,
                          ArrayRef<int64_t> expected);

/// Emits "expects <what> with element type X, got Y" unless they agree.
LogicalResult verifyElementType(Operation *op, StringRef what, Type type,
                                Type expected);

/// Checks the chunking attributes of an attention op over a sequence of
/// `seqLen` positions. `sortedLen` is the length the window wraps around
/// (n_hashes · L for LSH), or 0 when the window does not wrap.
LogicalResult verifyChunking(Operation *op, int64_t seqLen, int64_t sortedLen,
                             int64_t chunkLen, int64_t chunksBefore,
                             int64_t chunksAfter);

/// Checks that every bucket factor is an even number of at least 2.
LogicalResult verifyBucketFactors(Operation *op, ArrayRef<int64_t> factors);

inline bool isDynamic(int64_t d) { return ShapedType::isDynamic(d); }

} // namespace mlir::reformer::detail

#endif // REFORMER_LIB_DIALECT_REFORMER_IR_SHAPECHECKS_H
