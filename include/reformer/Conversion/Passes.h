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

/// Adds every reformer-op lowering to `patterns`; attention blocks walk at
/// most `maxBlockRun` query chunks per parallel iteration.
void populateReformerToLinalgPatterns(RewritePatternSet &patterns,
                                      int64_t maxBlockRun = 16);

/// The module attribute that holds the ABI manifest.
constexpr llvm::StringLiteral kAbiAttrName = "reformer.abi";

} // namespace mlir::reformer

#endif // REFORMER_CONVERSION_PASSES_H
