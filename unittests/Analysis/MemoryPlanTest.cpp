//===- MemoryPlanTest.cpp - Planned memory of the training step -----------===//
//
// Reversible layers keep the training step's activation memory independent
// of depth: the planned peak of the step's own buffers for 12 layers stays
// within 1.15× that of 2 layers at the same sequence length, while the
// parameters and Adam moments (arguments) grow with depth.
//
//===----------------------------------------------------------------------===//

#include "reformer/Analysis/MemoryPlan.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"
#include "reformer/InitReformer.h"
#include "reformer/ModelBuilder/ModelBuilder.h"
#include "reformer/Target/Cpu/CpuCompiler.h"

#include "mlir/Pass/PassManager.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::reformer;

namespace {

ModelConfig config(int64_t layers) {
  ModelConfig c;
  c.name = "plan";
  c.vocabSize = 256;
  c.dModel = 128;
  c.nHeads = 2;
  c.nLayers = layers;
  c.dFf = 512;
  c.seqLen = 4096;
  c.attnLayers = {AttentionKind::Lsh};
  c.nHashes = 2;
  c.nBuckets = {64};
  c.lshChunkLen = 64;
  c.ffnChunk = 512;
  c.axialPosShape = {64, 64};
  c.axialPosDims = {64, 64};
  return c;
}

/// The plan of `function` after bufferization.
MemoryPlan plan(const ModelConfig &c, StringRef function) {
  registerReformerPassesAndPipelines();
  DialectRegistry registry;
  registerReformerDialects(registry);
  MLIRContext context(registry);
  auto module = buildModel(&context, c, BuildOptions());
  EXPECT_TRUE(succeeded(module));
  PassManager pm(&context);
  pm.addPass(createRfDeriveTrainingStep());
  EXPECT_TRUE(succeeded(pm.run(**module)));
  EXPECT_TRUE(
      succeeded(lowerForCpu(**module, CpuPipelineOptions(), {}, "bufferized")));
  auto func = (*module)->lookupSymbol<func::FuncOp>(function);
  EXPECT_TRUE(func);
  FailureOr<MemoryPlan> result = computeMemoryPlan(func);
  EXPECT_TRUE(succeeded(result));
  return *result;
}

TEST(MemoryPlan, TrainingStepActivationsDoNotGrowWithDepth) {
  MemoryPlan two = plan(config(2), "train_step");
  MemoryPlan twelve = plan(config(12), "train_step");
  ASSERT_GT(two.peakBytes, 0);
  EXPECT_LE(double(twelve.peakBytes), 1.15 * double(two.peakBytes))
      << "2 layers: " << two.peakBytes << " B, 12 layers: " << twelve.peakBytes
      << " B";
  // The parameters and moments (arguments) do grow with depth.
  EXPECT_GT(twelve.argumentBytes, 4 * two.argumentBytes);
}

} // namespace
