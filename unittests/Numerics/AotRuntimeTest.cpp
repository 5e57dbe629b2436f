//===- AotRuntimeTest.cpp - Shared library + runtime vs the reference -----===//
//
// The ahead-of-time path end to end: rf-cpu-pipeline, host object code, a
// shared library linked by the system driver, loaded and fed by the runtime
// (no MLIR), against the double-precision reference. Tolerance: 1e-4
// relative to the largest logit.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"
#include "Reference.h"
#include "TestModels.h"

#include "reformer/ModelBuilder/ModelBuilder.h"
#include "reformer/Runtime/Module.h"
#include "reformer/Runtime/Params.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"

#include "gtest/gtest.h"

using namespace harness;
using namespace mlir::reformer;
using namespace reformer::runtime;

namespace {

TEST(AotRuntime, SharedLibraryMatchesReference) {
  ModelConfig config = smallModel();
  auto context = makeContext();
  auto module = buildModel(context.get(), config);
  ASSERT_TRUE(mlir::succeeded(module));
  ASSERT_TRUE(mlir::succeeded(lowerForCpu(**module, {})));
  llvm::LLVMContext llvmContext;
  std::string error;
  auto llvmModule = translateForHost(**module, llvmContext, error);
  ASSERT_TRUE(llvmModule) << error;

  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("reformer-aot", dir));
  std::string object = (dir + "/model.o").str(),
              library = (dir + "/model.so").str();
  {
    std::error_code ec;
    llvm::ToolOutputFile out(object, ec, llvm::sys::fs::OF_None);
    ASSERT_FALSE(ec);
    ASSERT_TRUE(
        mlir::succeeded(emitHostCode(*llvmModule, out.os(), false, error)))
        << error;
    out.keep();
  }
  ASSERT_TRUE(mlir::succeeded(linkSharedLibrary(object, library, false, error)))
      << error;

  std::unique_ptr<LoadedModule> loaded;
  Status opened = LoadedModule::open(library, loaded);
  ASSERT_TRUE(opened) << opened.error;
  const FunctionAbi *forward = loaded->function("forward");
  ASSERT_NE(forward, nullptr);
  ParamMap params;
  Status init = initParams(*forward, 3, params);
  ASSERT_TRUE(init) << init.error;
  // Larger weights than the default 0.02 so attention is far from uniform.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (auto &[name, tensor] : params)
    if (name.find("layer_norm") == std::string::npos)
      for (int64_t i = 0; i < tensor.spec().numElements(); ++i)
        tensor.as<float>()[i] = normal(rng);

  Tensor tokens(forward->find("tokens")->spec);
  for (int64_t i = 0; i < tokens.spec().numElements(); ++i)
    tokens.as<int32_t>()[i] = rng() % config.vocabSize;
  std::vector<Tensor> outputs;
  outputs.reserve(1);
  std::vector<Tensor *> args;
  for (const ArgAbi &arg : forward->args) {
    if (arg.kind == ArgKind::Input)
      args.push_back(&tokens);
    else if (arg.kind == ArgKind::Param)
      args.push_back(&params.at(arg.spec.name));
    else
      args.push_back(&outputs.emplace_back(arg.spec));
  }
  Status called = loaded->call(*forward, args);
  ASSERT_TRUE(called) << called.error;

  std::map<std::string, std::vector<double>> reference;
  for (const auto &[name, tensor] : params) {
    const float *p = tensor.as<float>();
    reference[name].assign(p, p + tensor.spec().numElements());
  }
  std::vector<int64_t> tokens64(
      tokens.as<int32_t>(), tokens.as<int32_t>() + tokens.spec().numElements());
  std::vector<double> expected =
      reference::modelForward(toReference(config), reference, tokens64);
  const float *logits = outputs[0].as<float>();
  std::vector<float> actual(logits, logits + outputs[0].spec().numElements());
  EXPECT_LE(relativeError(actual, expected), 1e-4);

  // A call with a wrongly shaped tensor is refused, not run.
  Tensor wrong(TensorSpec{"tokens", DType::I32, {1, 1}});
  args[0] = &wrong;
  Status refused = loaded->call(*forward, args);
  EXPECT_FALSE(refused);
  EXPECT_NE(refused.error.find("expected i32 [2, 40], got i32 [1, 1]"),
            std::string::npos)
      << refused.error;
  llvm::sys::fs::remove_directories(dir);
}

} // namespace
