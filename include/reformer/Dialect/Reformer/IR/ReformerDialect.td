//===- ReformerDialect.td - The reformer dialect -----------*- tablegen -*-===//
//
// The dialect that expresses a Reformer language model: shared-QK LSH
// attention, reversible residual blocks, chunked feed-forward layers and the
// few ops around them.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_DIALECT_REFORMER_IR_REFORMERDIALECT_TD
#define REFORMER_DIALECT_REFORMER_IR_REFORMERDIALECT_TD

include "mlir/IR/OpBase.td"

def Reformer_Dialect : Dialect {
  let name = "reformer";
  let cppNamespace = "::mlir::reformer";
  let summary = "Ops of the Reformer (Kitaev, Kaiser, Levskaya, ICLR 2020)";
  let description = [{
    The `reformer` dialect holds a Reformer language model at the level of its
    paper: LSH self-attention with shared queries and keys, reversible
    residual blocks, chunked feed-forward layers, and what a language model
    needs around them (embeddings, axial positions, layer norm, dense layers,
    local attention, cross-entropy). Lower-level ops spell out the steps of
    LSH attention (random rotations, hashing, stable bucket sort, attention
    over sorted chunks, unsort, round combine) so that each step can be
    lowered and tested on its own.

    Tensors are value-semantic. Per-head tensors are laid out `[B, H, L, D]`
    (batch, heads, sequence, head dimension); per-round tensors
    `[B, H, R, L(, D)]` with `R` the number of hash rounds.
  }];
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

class Reformer_Op<string mnemonic, list<Trait> traits = []>
    : Op<Reformer_Dialect, mnemonic, traits>;

#endif // REFORMER_DIALECT_REFORMER_IR_REFORMERDIALECT_TD
