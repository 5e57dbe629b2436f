//===- Pipelines.cpp - Pass pipelines of the reformer dialect -------------===//

#include "reformer/Dialect/Reformer/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void reformer::buildPrepareInferencePipeline(OpPassManager &pm) {
  // Canonicalize first: it drops training results nobody reads, so the
  // decomposition does not materialize them.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createRfInlineReversible());
  pm.addPass(createRfDecomposeLshAttention());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void reformer::registerReformerPipelines() {
  PassPipelineRegistration<>(
      "rf-prepare-inference",
      "Canonicalize, inline reversible blocks and decompose LSH attention "
      "into its steps: the form the CPU and GPU lowerings start from",
      buildPrepareInferencePipeline);
}
