//===- ParallelWork.h - Where host-launched work may start ------*- C++ -*-===//

#ifndef REFORMER_LIB_CONVERSION_MATMULTOMMA_PARALLELWORK_H
#define REFORMER_LIB_CONVERSION_MATMULTOMMA_PARALLELWORK_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::reformer {

/// Whether `op` sits in a parallel loop or a kernel, where it cannot start
/// GPU work of its own (only the host launches kernels).
inline bool isInsideParallelWork(Operation *op) {
  for (Operation *parent = op->getParentOp();
       parent && !isa<func::FuncOp>(parent); parent = parent->getParentOp())
    if (isa<scf::ParallelOp, scf::ForallOp, gpu::LaunchOp>(parent))
      return true;
  return false;
}

} // namespace mlir::reformer

#endif // REFORMER_LIB_CONVERSION_MATMULTOMMA_PARALLELWORK_H
