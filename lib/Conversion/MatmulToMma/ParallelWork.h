//===- ParallelWork.h - Where host-launched work may start ------*- C++ -*-===//

#ifndef REFORMER_LIB_CONVERSION_MATMULTOMMA_PARALLELWORK_H
#define REFORMER_LIB_CONVERSION_MATMULTOMMA_PARALLELWORK_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::reformer {

/// Whether the host runs `op` itself: it is at the top of its function or
/// only inside serial `scf.for` loops. Only the host launches kernels, and
/// rf-map-loops-to-gpu keeps only such loops on the host (an op under an
/// `scf.if` or a parallel loop ends up inside a kernel).
inline bool runsInHostLoopsOnly(Operation *op) {
  for (Operation *parent = op->getParentOp();
       parent && !isa<func::FuncOp>(parent); parent = parent->getParentOp())
    if (!isa<scf::ForOp>(parent))
      return false;
  return true;
}

} // namespace mlir::reformer

#endif // REFORMER_LIB_CONVERSION_MATMULTOMMA_PARALLELWORK_H
