//===- Passes.td - Transformations of the reformer dialect -*- tablegen -*-===//

#ifndef REFORMER_DIALECT_REFORMER_TRANSFORMS_PASSES_TD
#define REFORMER_DIALECT_REFORMER_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def RfDecomposeLshAttention : Pass<"rf-decompose-lsh-attention"> {
  let summary = "Spell out reformer.lsh_attention as its steps";
  let description = [{
    Rewrites every `reformer.lsh_attention` into the ops of its steps:
    `lsh_rotations` (when the op carries a seed), `lsh_hash`, `bucket_sort`,
    `sorted_chunk_attention`, `unsort` of the per-round outputs and
    log-sum-exps, and `combine_rounds`. The training results map to the
    unsorted log-sum-exp and the buckets. Shapes must be static.
  }];
  let dependentDialects = ["::mlir::reformer::ReformerDialect"];
}

def RfInlineReversible : Pass<"rf-inline-reversible"> {
  let summary = "Inline reversible blocks for inference";
  let description = [{
    Replaces every `reformer.reversible` by its forward computation,
    `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`, with the bodies of `f` and `g`
    inlined and the residual additions as `arith.addf` on tensors.
    Inference needs no inverse, so the block structure can go.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

#endif // REFORMER_DIALECT_REFORMER_TRANSFORMS_PASSES_TD
