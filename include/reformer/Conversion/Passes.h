//===- Passes.h - Conversions out of the reformer dialect -------*- C++ -*-===//

#ifndef REFORMER_CONVERSION_PASSES_H
#define REFORMER_CONVERSION_PASSES_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::reformer {

#define GEN_PASS_DECL
#include "reformer/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "reformer/Conversion/Passes.h.inc"

/// How the attention blocks and the LSH sort are shaped for a target.
struct AttentionLoweringOptions {
  /// Most consecutive query chunks one parallel iteration walks.
  int64_t maxBlockRun = 16;
  /// f32 lanes of the block code's vectors.
  int64_t vectorLanes = 16;
  /// Most query chunks one parallel iteration of the attention gradient
  /// walks; 0: a head's all (no atomics).
  int64_t gradBlockRun = 0;
  /// Tiles of the LSH counting sort's sequence (1: one serial sort per
  /// batch, head and round).
  int64_t sortTiles = 1;
  /// Emit the blocks of each attention in a private function tagged with
  /// kLshAttentionBlockAttrName or kLocalAttentionBlockAttrName (their
  /// gradients' with kLshAttentionGradBlockAttrName and
  /// kLocalAttentionGradBlockAttrName), for a target pass to re-implement.
  bool outlineAttention = false;
};

/// The attributes of a function holding one LSH (local) attention's blocks:
/// a dictionary of the block parameters (see rf-lower-attention-to-mma).
constexpr llvm::StringLiteral kLshAttentionBlockAttrName =
    "reformer.lsh_attention_block";
constexpr llvm::StringLiteral kLocalAttentionBlockAttrName =
    "reformer.local_attention_block";
constexpr llvm::StringLiteral kLshAttentionGradBlockAttrName =
    "reformer.lsh_attention_grad_block";
constexpr llvm::StringLiteral kLocalAttentionGradBlockAttrName =
    "reformer.local_attention_grad_block";

/// The unit attribute of the elementwise linalg.generic of one parameter's
/// optimizer update, whose inputs are (param, grad, state...) and outputs
/// (new param, new state...) (see rf-place-gradients-in-outputs and
/// rf-fuse-optimizer-updates).
constexpr llvm::StringLiteral kOptimizerUpdateAttrName =
    "reformer.optimizer_update";

/// Adds every reformer-op lowering to `patterns`.
void populateReformerToLinalgPatterns(
    RewritePatternSet &patterns,
    const AttentionLoweringOptions &attention = AttentionLoweringOptions());

/// The module attribute that holds the ABI manifest.
constexpr llvm::StringLiteral kAbiAttrName = "reformer.abi";

} // namespace mlir::reformer

#endif // REFORMER_CONVERSION_PASSES_H
