//===- ModelTest.cpp - A compiled 2-layer Reformer LM vs the reference ----===//
//
// The model builder's module, compiled through rf-cpu-pipeline, against the
// reference forward written from the paper. Parameters are allocated from
// the module's ABI manifest. Tolerance: 1e-4 relative to the largest logit.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"
#include "Reference.h"
#include "TestModels.h"

#include "reformer/ModelBuilder/ModelBuilder.h"

#include "llvm/ADT/StringExtras.h"

#include "gtest/gtest.h"

#include <cmath>
#include <sstream>

using namespace harness;
using namespace mlir::reformer;

namespace {

enum class Pipeline { Cpu, GpuMapping, GpuBf16Matmuls };

void checkModel(const ModelConfig &config, Pipeline pipeline = Pipeline::Cpu) {
  bool gpuMapping = pipeline != Pipeline::Cpu;
  // bf16 matmul operands (8-bit mantissas) with f32 sums: 1e-2, as for the
  // GPU. bf16 activations round every stored intermediate as well (about
  // ten roundings between the embeddings and the logits): 2e-2.
  bool bf16 = pipeline == Pipeline::GpuBf16Matmuls || config.mixedPrecision();
  double tolerance = config.mixedPrecision() ? 2e-2 : bf16 ? 1e-2 : 1e-4;
  auto context = makeContext();
  BuildOptions options;
  options.emitLoss = true;
  auto module = buildModel(context.get(), config, options);
  ASSERT_TRUE(mlir::succeeded(module));
  auto compiled = gpuMapping
                      ? Compiled::fromModule(std::move(*module),
                                             gpuMappingOnCpuStages(bf16))
                      : Compiled::fromModule(*context, std::move(*module));
  ASSERT_TRUE(compiled);

  std::vector<AbiArg> args = argsOf(compiled->manifest(), "forward");
  ASSERT_FALSE(args.empty()) << compiled->manifest();
  std::mt19937 rng(21);
  std::map<std::string, std::vector<double>> params;
  std::vector<std::vector<float>> floatBuffers;
  std::vector<int32_t> tokens(config.batchSize * config.seqLen);
  for (int32_t &t : tokens)
    t = rng() % config.vocabSize;
  std::vector<void *> pointers;
  for (const AbiArg &arg : args) {
    if (arg.kind == "input") {
      ASSERT_EQ(arg.name, "tokens");
      pointers.push_back(tokens.data());
      continue;
    }
    ASSERT_EQ(arg.dtype, "f32");
    std::vector<float> values(arg.count());
    if (arg.kind == "param") {
      bool norm = llvm::StringRef(arg.name).ends_with("layer_norm.weight");
      values = randomFloats(rng, arg.count(), norm ? 0.1 : 0.3);
      if (norm)
        for (float &v : values)
          v += 1.0f;
      params[arg.name] = toDouble(values);
    }
    floatBuffers.push_back(std::move(values));
    pointers.push_back(floatBuffers.back().data());
  }
  compiled->call("forward", pointers);
  ASSERT_EQ(args.back().kind, "output");
  const std::vector<float> &logits = floatBuffers.back();

  std::vector<int64_t> tokens64(tokens.begin(), tokens.end());
  std::vector<double> expected =
      reference::modelForward(toReference(config), params, tokens64);
  double error = relativeError(logits, expected);
  EXPECT_LE(error, tolerance);
  // The operands really are rounded: bf16 is far from the f32 result.
  if (bf16)
    EXPECT_GE(error, 1e-4);

  // @loss(tokens, targets, params…): next-token targets are the tokens
  // shifted by one (wrapping), any targets will do.
  std::vector<int32_t> targets(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i)
    targets[i] = tokens[(i + 1) % tokens.size()];
  std::vector<void *> lossArgs = {tokens.data(), targets.data()};
  for (size_t i = 1; i + 1 < pointers.size(); ++i)
    lossArgs.push_back(pointers[i]);
  float loss = 0;
  lossArgs.push_back(&loss);
  compiled->call("loss", lossArgs);
  std::vector<int64_t> targets64(targets.begin(), targets.end());
  double expectedLoss =
      reference::crossEntropy(expected, targets64, config.vocabSize);
  EXPECT_NEAR(loss, expectedLoss, tolerance * expectedLoss);
}

TEST(Model, TwoLayerLocalAndLshWithPadding) { checkModel(smallModel()); }

// The GPU pipeline's loops and rf-map-loops-to-gpu (collapsed and tiled
// loops with guards, scratch in per-iteration slots, the loss's serial code
// wrapped), run on the CPU against the reference.
TEST(Model, GpuLoopMappingMatchesReference) {
  checkModel(smallModel(), Pipeline::GpuMapping);
}

// Mixed precision: the dense matmuls the GPU runs on tensor cores (bf16
// operands, f32 sums), emulated, against the double-precision reference.
TEST(Model, GpuBf16MatmulsMatchReference) {
  checkModel(smallModel(), Pipeline::GpuBf16Matmuls);
}

// Mixed precision: f32 weights and residual stream, bf16 activations inside
// the residual functions and the head (the weights' bf16 copies, every
// intermediate rounded when stored).
TEST(Model, MixedPrecisionMatchesReference) {
  checkModel(mixedPrecisionModel());
}

TEST(Model, GpuMixedPrecisionMatchesReference) {
  checkModel(mixedPrecisionModel(), Pipeline::GpuBf16Matmuls);
}

TEST(Model, TwoLshLayersNoPadding) {
  ModelConfig c = smallModel();
  c.attnLayers = {AttentionKind::Lsh};
  c.seqLen = 48;
  c.axialPosShape = {8, 6};
  c.nHashes = 4;
  c.nBuckets = {2, 4};
  c.causal = false;
  c.activation = "relu";
  c.batchSize = 1;
  checkModel(c);
}

} // namespace
