//===- LowerAttentionToMma.cpp - The rf-lower-attention-to-mma pass -------===//
//
// Replaces the body of each outlined attention function (tagged by
// rf-convert-reformer-to-linalg{outline-attention=1}) with its fused
// tensor-core kernel: AttentionForwardKernel.cpp for the forward of LSH and
// local attention, AttentionGradKernel.cpp for their gradients. A function
// whose shapes a kernel does not take keeps its loops.
//
//===----------------------------------------------------------------------===//

#include "AttentionKernels.h"

#include "reformer/Conversion/Passes.h"

// The dialects the kernels create (the pass's dependent dialects).
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFLOWERATTENTIONTOMMA
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

namespace {

struct RfLowerAttentionToMmaPass
    : reformer::impl::RfLowerAttentionToMmaBase<RfLowerAttentionToMmaPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<func::FuncOp> functions;
    getOperation().walk([&](func::FuncOp f) {
      if (f->hasAttr(kLshAttentionBlockAttrName) ||
          f->hasAttr(kLocalAttentionBlockAttrName) ||
          f->hasAttr(kLshAttentionGradBlockAttrName) ||
          f->hasAttr(kLocalAttentionGradBlockAttrName))
        functions.push_back(f);
    });
    for (func::FuncOp function : functions) {
      if (function->hasAttr(kLshAttentionGradBlockAttrName) ||
          function->hasAttr(kLocalAttentionGradBlockAttrName))
        lowerAttentionGrad(function, emulateOnCpu);
      else
        lowerAttentionForward(function, emulateOnCpu);
    }
  }
};

} // namespace
