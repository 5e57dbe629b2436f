//===- SerializeMatmulForalls.cpp - The rf-serialize-matmul-foralls pass --===//
//
// On the GPU, rf-map-loops-to-gpu runs the body of a parallel loop that
// holds other loops on one thread per iteration. For the chunked FFN that
// is a handful of threads each walking whole matmuls. As a serial host loop
// instead, every matmul and elementwise op of an iteration becomes a kernel
// of its own that fills the GPU. The iterations of an scf.forall are
// independent, so running them in order computes the same result.
//
//===----------------------------------------------------------------------===//

#include "ParallelWork.h"

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/SCF/Transforms/Transforms.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFSERIALIZEMATMULFORALLS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

bool holdsMatmul(scf::ForallOp loop) {
  return llvm::any_of(loop.getBody()->getOperations(),
                      [](Operation &op) { return isa<linalg::MatmulOp>(op); });
}

struct RfSerializeMatmulForallsPass
    : reformer::impl::RfSerializeMatmulForallsBase<
          RfSerializeMatmulForallsPass> {
  void runOnOperation() override {
    SmallVector<scf::ForallOp> loops;
    getOperation().walk([&](scf::ForallOp loop) {
      if (loop.getOutputs().empty() && holdsMatmul(loop) &&
          reformer::runsInHostLoopsOnly(loop))
        loops.push_back(loop);
    });
    IRRewriter rewriter(&getContext());
    for (scf::ForallOp loop : loops) {
      rewriter.setInsertionPoint(loop);
      if (failed(scf::forallToForLoop(rewriter, loop)))
        return signalPassFailure();
    }
  }
};

} // namespace
