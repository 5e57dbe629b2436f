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

def RfDeriveTrainingStep : Pass<"rf-derive-training-step", "ModuleOp"> {
  let summary = "Derive a compiled training step from a model's forward";
  let description = [{
    Adds `@train_step` next to the forward function (`forward`, returning
    the logits): the loss, the gradient of every parameter and one
    Adam/AdamW update, as one function.

    `@train_step(tokens, targets, loss_weights, lr, step, params…, m…, v…)
     -> (loss, params'…, m'…, v'…)`: `loss` is the weighted mean softmax
    cross-entropy of the logits against `targets` (`loss_weights` f32
    `[B, L]`, zero where a position does not count), `lr` and `step` are
    the learning rate of this step and its number (from 1). Every parameter
    that receives a gradient has Adam moments `m`, `v` (inputs named
    `adam.m.NAME`, `adam.v.NAME`); the outputs carry the same names as the
    inputs they replace. Parameters with no gradient (LSH rotations) are
    inputs only. With `optimizer=adafactor` the state is Adafactor's
    factored second moments instead (`adafactor.vr.NAME` for every
    parameter, `adafactor.vc.NAME` for those of rank ≥ 2). With `clip-norm`, every gradient is scaled by
    `reformer.clip_scale` before its update, so all gradients are held
    until the last one is known; without it, each parameter is updated as
    soon as its gradient is complete.

    The forward runs with reversible blocks inlined, keeping only what the
    backward needs: the last block's outputs and the buckets of every LSH
    attention. A call of a layer function (`(x1, x2, operands…) -> (y1,
    y2)` holding one `reformer.reversible` of (x1, x2), as the model
    builder emits) is derived once per function, whatever the number of
    calls: `@<name>_<layer>_forward` also returns the layer's buckets, and
    `@<name>_<layer>_backward(y1, y2, dy1, dy2, buckets…, operands…,
    [state…, lr, step]) -> (x1, x2, dx1, dx2, gradients…, params'…,
    state'…)` rebuilds the layer's inputs, differentiates it and, without
    `clip-norm`, updates the parameters that only its layer reads; the
    arguments it does not read (rotations) are not passed. Any other call
    is an error. The backward walks the blocks in reverse and recomputes each
    block's inputs from its outputs, `x2 = y2 − G(y1)`, `x1 = y1 − F(x2)`,
    reusing the stored buckets (no re-hashing), so stored activations do
    not grow with depth. Every op's gradient is a dialect op
    (`dense_grad`, `layer_norm_grad`, `chunked_ffn_grad`,
    `lsh_attention_grad`, …). Models must be f32.
  }];
  let options = [
    Option<"forwardName", "forward", "std::string", "\"forward\"",
           "The forward function (tokens, params… → logits)">,
    Option<"stepName", "name", "std::string", "\"train_step\"",
           "Name of the function to add">,
    Option<"optimizer", "optimizer", "std::string", "\"adam\"",
           "adam (Adam/AdamW) or adafactor (the paper's choice: factored "
           "second moments, no momentum, update clipping, relative step)">,
    Option<"beta1", "beta1", "double", "0.9", "Adam β₁">,
    Option<"beta2", "beta2", "double", "0.98", "Adam β₂">,
    Option<"epsilon", "epsilon", "double", "1e-9", "Adam ε">,
    Option<"weightDecay", "weight-decay", "double", "0.0",
           "Decoupled weight decay (AdamW)">,
    Option<"clipNorm", "clip-norm", "double", "0.0",
           "Clip the gradients to this global L2 norm (0: no clipping)">,
  ];
  let dependentDialects = ["::mlir::reformer::ReformerDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::tensor::TensorDialect"];
}

#endif // REFORMER_DIALECT_REFORMER_TRANSFORMS_PASSES_TD
