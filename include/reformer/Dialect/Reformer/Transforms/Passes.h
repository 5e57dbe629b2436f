//===- Passes.h - Transformations of the reformer dialect -------*- C++ -*-===//

#ifndef REFORMER_DIALECT_REFORMER_TRANSFORMS_PASSES_H
#define REFORMER_DIALECT_REFORMER_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Pass/Pass.h"

#include "reformer/Dialect/Reformer/IR/ReformerDialect.h"
#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

namespace mlir::reformer {

#define GEN_PASS_DECL
#include "reformer/Dialect/Reformer/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "reformer/Dialect/Reformer/Transforms/Passes.h.inc"

/// Rewrites `lsh_attention` into its steps (static shapes only).
void populateDecomposeLshAttentionPatterns(RewritePatternSet &patterns);
/// Steps 2–6 of `op` (sort, chunked attention, unsort, round combination)
/// on `qk`, `v` and `mask` with the given per-round `buckets` instead of
/// hashing: the recomputation of a training step reuses the forward's
/// buckets. Returns the output and the per-round log-sum-exps (sequence
/// order). Static shapes only.
std::pair<Value, Value> buildLshAttentionFromBuckets(OpBuilder &builder,
                                                     LshAttentionOp op,
                                                     Value qk, Value v,
                                                     Value mask, Value buckets);
/// Replaces `reversible` by its forward computation.
void populateInlineReversiblePatterns(RewritePatternSet &patterns);

/// Adds the passes that take a model from the builder's form to the form the
/// target lowerings start from: canonicalize, inline reversible blocks,
/// decompose LSH attention, clean up.
void buildPrepareInferencePipeline(OpPassManager &pm);

/// Registers the pipelines above with the pass registry.
void registerReformerPipelines();

} // namespace mlir::reformer

#endif // REFORMER_DIALECT_REFORMER_TRANSFORMS_PASSES_H
