//===- ParallelizeLinalg.cpp - The rf-parallelize-linalg pass -------------===//
//
// convert-linalg-to-loops turns every linalg op into serial scf.for nests,
// so layer norms, residual adds, activations and copies would run on one
// core while the matmuls use all of them. This pass cuts such ops into
// blocks along one parallel loop and wraps them in an scf.parallel that
// OpenMP later shares out.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFPARALLELIZELINALG
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

/// The outermost parallel loop with more than one iteration, or -1.
int64_t pickParallelLoop(linalg::LinalgOp op, ArrayRef<int64_t> ranges) {
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (auto [i, range] : llvm::enumerate(ranges))
    if (iterators[i] == utils::IteratorType::parallel && range > 1)
      return i;
  return -1;
}

/// The smallest tile that gives at most `blocks` blocks and divides
/// `extent`, so the blocks keep static shapes.
int64_t pickTileSize(int64_t extent, int64_t blocks) {
  int64_t tile = llvm::divideCeil(extent, blocks);
  while (extent % tile != 0)
    ++tile;
  return tile;
}

struct RfParallelizeLinalgPass
    : reformer::impl::RfParallelizeLinalgBase<RfParallelizeLinalgPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<linalg::LinalgOp> candidates;
    getOperation()->walk([&](linalg::LinalgOp op) {
      if (op.hasPureBufferSemantics() &&
          !op->getParentOfType<scf::ParallelOp>())
        candidates.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::LinalgOp op : candidates) {
      SmallVector<int64_t> ranges = op.getStaticLoopRanges();
      if (llvm::any_of(ranges, ShapedType::isDynamic))
        continue;
      int64_t iterations = 1;
      for (int64_t range : ranges)
        iterations *= range;
      int64_t loop = pickParallelLoop(op, ranges);
      if (iterations < minIterations || loop < 0)
        continue;
      SmallVector<int64_t> tileSizes(ranges.size(), 0);
      tileSizes[loop] = pickTileSize(ranges[loop], blocks);
      auto options =
          linalg::LinalgTilingOptions().setTileSizes(tileSizes).setLoopType(
              linalg::LinalgTilingLoopType::ParallelLoops);
      rewriter.setInsertionPoint(op);
      FailureOr<linalg::TiledLinalgOp> tiled =
          linalg::tileLinalgOp(rewriter, op, options);
      if (failed(tiled)) {
        op.emitOpError("rf-parallelize-linalg: could not tile");
        return signalPassFailure();
      }
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
