//===- Harness.cpp - Compile MLIR for the CPU and call it -----------------===//

#include "Harness.h"
#include "Reference.h"

#include "reformer/InitReformer.h"
#include "reformer/Pipelines/GpuPipeline.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/StringExtras.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

using namespace mlir;

namespace harness {

std::unique_ptr<MLIRContext> makeContext() {
  reformer::registerReformerPassesAndPipelines();
  DialectRegistry registry;
  reformer::registerReformerDialects(registry);
  return std::make_unique<MLIRContext>(registry);
}

std::unique_ptr<Compiled> Compiled::fromModule(MLIRContext &context,
                                               OwningOpRef<ModuleOp> module) {
  return fromModule(std::move(module), reformer::getCpuPipelineStages({}));
}

std::unique_ptr<Compiled>
Compiled::fromModule(OwningOpRef<ModuleOp> module,
                     llvm::ArrayRef<reformer::PipelineStage> stages) {
  if (failed(reformer::runPipelineStages(*module, stages, {}, ""))) {
    ADD_FAILURE() << "the pipeline failed";
    return nullptr;
  }
  std::string error;
  auto compiled = std::unique_ptr<Compiled>(new Compiled());
  compiled->jit = reformer::CpuJit::create(*module, error);
  if (!compiled->jit) {
    ADD_FAILURE() << "JIT compilation failed: " << error;
    return nullptr;
  }
  return compiled;
}

llvm::SmallVector<reformer::PipelineStage> gpuMappingOnCpuStages(bool bf16) {
  reformer::GpuPipelineOptions gpu;
  // The test models have few query chunks per head: runs of 2 still split
  // the attention gradient over threads that add atomically.
  gpu.gradBlockRun = 2;
  gpu.matmulPrecision = bf16 ? "bf16" : "f32";
  reformer::CpuPipelineOptions cpu; // serial: the JIT links no libomp
  llvm::SmallVector<reformer::PipelineStage> stages;
  for (reformer::PipelineStage stage : reformer::getGpuPipelineStages(gpu)) {
    // The tensor-core kernels' numerics in code the CPU runs: the matmuls
    // read bf16-rounded operands, the fused attention runs as an emulation
    // of its blocks.
    for (llvm::StringRef pass :
         {"rf-lower-matmuls-to-mma", "rf-lower-attention-to-mma"}) {
      size_t at = stage.passes.find(pass.str());
      if (at != std::string::npos)
        stage.passes.insert(at + pass.size(), "{emulate-on-cpu=1}");
    }
    stages.push_back(stage);
    if (stage.name == "loops")
      break;
  }
  stages.push_back(
      {"mapped", "func.func(rf-map-loops-to-gpu),func.func(rf-plan-arena)"});
  for (const reformer::PipelineStage &stage :
       reformer::getCpuPipelineStages(cpu))
    if (stage.name == "llvm")
      stages.push_back(stage);
  return stages;
}

std::unique_ptr<Compiled> Compiled::fromSource(const std::string &source) {
  return fromSource(source, reformer::getCpuPipelineStages({}));
}

std::unique_ptr<Compiled>
Compiled::fromSource(const std::string &source,
                     llvm::ArrayRef<reformer::PipelineStage> stages) {
  // The context must outlive the engine's use of it only during compilation.
  static std::unique_ptr<MLIRContext> context = makeContext();
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, context.get());
  if (!module) {
    ADD_FAILURE() << "cannot parse:\n" << source;
    return nullptr;
  }
  return fromModule(std::move(module), stages);
}

std::unique_ptr<Compiled> compileSource(const std::string &source,
                                        bool gpuKernels) {
  if (gpuKernels)
    return Compiled::fromSource(source, gpuMappingOnCpuStages(true));
  return Compiled::fromSource(source);
}

void Compiled::call(const std::string &function,
                    std::vector<void *> args) const {
  reformer::CpuJit::Entry entry = jit->lookup(function);
  ASSERT_NE(entry, nullptr) << "no entry point for " << function;
  entry(args.data());
}

std::vector<float> randomFloats(std::mt19937 &rng, size_t n, double scale) {
  std::normal_distribution<float> dist(0.0f, static_cast<float>(scale));
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

std::vector<double> toDouble(const std::vector<float> &v) {
  return std::vector<double>(v.begin(), v.end());
}

double relativeError(const std::vector<float> &actual,
                     const std::vector<double> &expected) {
  EXPECT_EQ(actual.size(), expected.size());
  double maxDiff = 0, maxRef = 0;
  for (size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    if (!std::isfinite(actual[i]))
      return INFINITY;
    maxDiff = std::max(maxDiff, std::abs(double(actual[i]) - expected[i]));
    maxRef = std::max(maxRef, std::abs(expected[i]));
  }
  return maxDiff / std::max(maxRef, 1e-30);
}

uint16_t toBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>(bits >> 16);
}

float fromBf16(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::string tensorType(const std::vector<int64_t> &shape,
                       const std::string &element) {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + element + ">";
}

} // namespace harness

std::vector<double> harness::finiteDifferences(
    const std::function<double(const std::vector<double> &)> &f,
    std::vector<double> x) {
  constexpr double h = 1e-5;
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double saved = x[i];
    x[i] = saved + h;
    double up = f(x);
    x[i] = saved - h;
    double down = f(x);
    x[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

double harness::dot(const std::vector<double> &a,
                    const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

int64_t harness::AbiArg::count() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<harness::AbiArg> harness::argsOf(const char *manifest,
                                             const std::string &function) {
  std::istringstream in(manifest);
  std::string line;
  std::vector<AbiArg> args;
  bool inFunction = false;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind, name;
    words >> kind >> name;
    if (kind == "function") {
      inFunction = name == function;
      continue;
    }
    if (!inFunction || (kind != "input" && kind != "param" && kind != "output"))
      continue;
    AbiArg arg;
    arg.kind = kind;
    arg.name = name;
    std::string shape;
    words >> arg.dtype >> shape;
    if (shape != "scalar")
      for (llvm::StringRef d : llvm::split(shape, 'x'))
        arg.shape.push_back(std::stoll(d.str()));
    args.push_back(arg);
  }
  return args;
}

bool harness::drawUnambiguousLshInputs(std::mt19937 &rng, int64_t batch,
                                       int64_t heads, int64_t len, int64_t dim,
                                       int64_t rounds,
                                       const std::vector<int64_t> &factors,
                                       double minMargin, std::vector<float> &qk,
                                       std::vector<float> &rot) {
  int64_t width = 0;
  for (int64_t f : factors)
    width += f / 2;
  int64_t perHead = len * dim, perRot = dim * rounds * width;
  for (int attempt = 0; attempt < 40; ++attempt) {
    qk = randomFloats(rng, batch * heads * perHead, 1.0);
    rot = randomFloats(rng, heads * perRot, 1.0);
    double margin = INFINITY;
    for (int64_t bh = 0; bh < batch * heads; ++bh) {
      std::vector<double> x(qk.begin() + bh * perHead,
                            qk.begin() + (bh + 1) * perHead);
      std::vector<double> r(rot.begin() + (bh % heads) * perRot,
                            rot.begin() + (bh % heads + 1) * perRot);
      margin = std::min(
          margin, reference::lshHashMargin(x, r, len, dim, rounds, factors));
    }
    if (margin > minMargin)
      return true;
  }
  return false;
}
