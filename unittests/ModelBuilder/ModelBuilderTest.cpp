//===- ModelBuilderTest.cpp - The C++ model builder API -------------------===//

#include "reformer/ModelBuilder/ModelBuilder.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringSet.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::reformer;

namespace {

template <typename OpTy> int64_t count(ModuleOp module) {
  int64_t n = 0;
  module.walk([&](OpTy) { ++n; });
  return n;
}

/// Parameters of one layer with the given attention.
int64_t paramsPerLayer(AttentionKind kind, bool rotationArgs) {
  // Two layer norms (2 each), value and output weights, FFN (4).
  int64_t common = 2 + 2 + 2 + 4;
  if (kind == AttentionKind::Local)
    return common + 2; // query and key
  return common + 1 + (rotationArgs ? 1 : 0);
}

TEST(ModelBuilder, TinyPresetHasOneArgumentPerParameter) {
  MLIRContext context;
  ModelConfig config = cantFail(getModelPreset("tiny"));
  FailureOr<OwningOpRef<ModuleOp>> module = buildModel(&context, config);
  ASSERT_TRUE(succeeded(module));

  auto forward = (*module)->lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(forward);
  int64_t expected = 1 /*tokens*/ + 1 /*embedding*/ +
                     int64_t(config.axialPosShape.size()) + 2 /*final norm*/ +
                     2 /*lm head*/;
  for (int64_t layer = 0; layer < config.nLayers; ++layer)
    expected += paramsPerLayer(config.attentionOf(layer), false);
  EXPECT_EQ(int64_t(forward.getNumArguments()), expected);

  // Every parameter has a unique name.
  llvm::StringSet<> names;
  for (unsigned i = 1; i < forward.getNumArguments(); ++i) {
    auto name = forward.getArgAttrOfType<StringAttr>(i, "reformer.param");
    ASSERT_TRUE(name) << "argument " << i << " has no name";
    EXPECT_TRUE(names.insert(name.getValue()).second) << name.getValue().str();
  }
  EXPECT_EQ(count<ReversibleOp>(**module), config.nLayers);
  EXPECT_EQ(count<LshAttentionOp>(**module), 1);
  EXPECT_EQ(count<LocalAttentionOp>(**module), 1);
  EXPECT_FALSE((*module)->lookupSymbol("loss"));
}

TEST(ModelBuilder, LossFunctionCallsForward) {
  MLIRContext context;
  ModelConfig config = cantFail(getModelPreset("tiny"));
  BuildOptions options;
  options.emitLoss = true;
  FailureOr<OwningOpRef<ModuleOp>> module =
      buildModel(&context, config, options);
  ASSERT_TRUE(succeeded(module));
  auto loss = (*module)->lookupSymbol<func::FuncOp>("loss");
  ASSERT_TRUE(loss);
  auto forward = (*module)->lookupSymbol<func::FuncOp>("forward");
  EXPECT_EQ(loss.getNumArguments(), forward.getNumArguments() + 1);
  EXPECT_EQ(count<SoftmaxCrossEntropyOp>(**module), 1);
}

TEST(ModelBuilder, RotationsAsArgumentsReplaceTheSeed) {
  MLIRContext context;
  ModelConfig config = cantFail(getModelPreset("tiny"));
  config.rotationsAsArguments = true;
  FailureOr<OwningOpRef<ModuleOp>> module = buildModel(&context, config);
  ASSERT_TRUE(succeeded(module));
  (*module)->walk([](LshAttentionOp op) {
    EXPECT_TRUE(op.getRotations());
    EXPECT_FALSE(op.getSeed());
  });
}

TEST(ModelBuilder, Enwik8PresetBuildsTwelveLayers) {
  MLIRContext context;
  ModelConfig config = cantFail(getModelPreset("enwik8"));
  // One function per kind of layer (local, LSH), called once per layer.
  FailureOr<OwningOpRef<ModuleOp>> module = buildModel(&context, config);
  ASSERT_TRUE(succeeded(module));
  EXPECT_EQ(count<ReversibleOp>(**module), 2);
  EXPECT_EQ(count<func::CallOp>(**module), 12);
  EXPECT_EQ(count<LshAttentionOp>(**module) + count<LocalAttentionOp>(**module),
            2);
  // Inlined, every layer has its block.
  BuildOptions inlined;
  inlined.layerFunctions = false;
  module = buildModel(&context, config, inlined);
  ASSERT_TRUE(succeeded(module));
  EXPECT_EQ(count<ReversibleOp>(**module), 12);
  EXPECT_EQ(count<func::CallOp>(**module), 0);
  EXPECT_EQ(count<LshAttentionOp>(**module) + count<LocalAttentionOp>(**module),
            12);
}

} // namespace
