//===- GradientRules.h - Per-op gradients for the training step -*- C++ -*-===//
//
// The rule of each forward op: given the gradients of its results, build the
// gradients of its operands as dialect ops (dense_grad, layer_norm_grad, …).
// Reversible blocks are not here: the training-step pass walks them itself,
// recomputing their inputs from their outputs.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_LIB_DIALECT_REFORMER_TRANSFORMS_GRADIENTRULES_H
#define REFORMER_LIB_DIALECT_REFORMER_TRANSFORMS_GRADIENTRULES_H

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/IR/Builders.h"

namespace mlir::reformer {

/// The forward values a rule reads: the forward op's operands and results
/// may have been recomputed since the op was built.
class ForwardValues {
public:
  virtual ~ForwardValues() = default;
  /// The current value of `original` (an operand or result of a forward op).
  virtual Value lookup(Value original) const = 0;
  /// The per-round log-sum-exps and buckets that belong to the current
  /// output of `op`.
  virtual std::pair<Value, Value> lshStatistics(LshAttentionOp op) const = 0;
  /// The seed of the step's dropout masks (null without dropout).
  virtual Value dropoutSeed() const = 0;
};

/// Gradients of `op`'s operands, one per operand (null where none flows:
/// token ids, masks, rotations), from its results' gradients (null: the
/// result does not reach the loss). Fails, with an error on `op`, for an op
/// without a rule.
FailureOr<SmallVector<Value>>
buildOperandGradients(OpBuilder &b, Operation *op, ArrayRef<Value> resultGrads,
                      const ForwardValues &forward);

} // namespace mlir::reformer

#endif // REFORMER_LIB_DIALECT_REFORMER_TRANSFORMS_GRADIENTRULES_H
