//===- MemoryPlanTest.cpp - Planned and measured memory of the step ------===//
//
// Reversible layers keep the training step's activation memory independent
// of depth: the planned peak of the step's own buffers for 12 layers stays
// within 1.15× that of 2 layers at the same sequence length, while the
// parameters and Adam moments (arguments) grow with depth. Compiled and run,
// the growth of the process's resident memory during one call, with the
// parameters, optimizer state and outputs already in place, says the same.
//
//===----------------------------------------------------------------------===//

#include "../Numerics/Harness.h"

#include "reformer/Analysis/MemoryPlan.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"
#include "reformer/InitReformer.h"
#include "reformer/ModelBuilder/ModelBuilder.h"
#include "reformer/Target/Cpu/CpuCompiler.h"

#include "mlir/Pass/PassManager.h"

#include "gtest/gtest.h"

#include <cstdio>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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

/// Resident bytes of this process now.
int64_t residentBytes() {
  long pages = 0, resident = 0;
  FILE *statm = std::fopen("/proc/self/statm", "r");
  if (!statm)
    return -1;
  int read = std::fscanf(statm, "%ld %ld", &pages, &resident);
  std::fclose(statm);
  return read == 2 ? int64_t(resident) * sysconf(_SC_PAGESIZE) : -1;
}

/// Compiles `c`'s training step, calls it once in a child process with
/// every argument allocated and written first, and returns the growth of
/// the child's peak resident memory during the call (-1 on failure).
int64_t measuredStepBytes(const ModelConfig &c) {
  auto context = harness::makeContext();
  auto module = buildModel(context.get(), c, BuildOptions());
  if (failed(module))
    return -1;
  PassManager pm(context.get());
  pm.addPass(createRfDeriveTrainingStep());
  if (failed(pm.run(**module)))
    return -1;
  auto compiled = harness::Compiled::fromModule(*context, std::move(*module));
  if (!compiled)
    return -1;
  std::vector<harness::AbiArg> args =
      harness::argsOf(compiled->manifest(), "train_step");

  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::mt19937 rng(3);
    std::vector<std::vector<float>> floats;
    std::vector<std::vector<int32_t>> ints;
    floats.reserve(args.size());
    ints.reserve(args.size());
    std::vector<void *> pointers;
    for (const harness::AbiArg &arg : args) {
      if (arg.dtype == "i32") {
        ints.emplace_back(arg.count());
        for (int32_t &t : ints.back())
          t = int32_t(rng() % c.vocabSize);
        pointers.push_back(ints.back().data());
        continue;
      }
      floats.push_back(harness::randomFloats(rng, arg.count(), 0.1));
      if (arg.name == "lr")
        floats.back()[0] = 1e-4f;
      if (arg.name == "step" || arg.name == "loss_weights")
        for (float &v : floats.back())
          v = 1.0f;
      pointers.push_back(floats.back().data());
    }
    // Free heap pages the compiler left behind would serve the step's
    // buffers without growing the resident set: give them back first.
    malloc_trim(0);
    int64_t before = residentBytes();
    compiled->call("train_step", pointers);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    int64_t growth = before < 0 ? -1 : usage.ru_maxrss * 1024 - before;
    ssize_t written = write(fds[1], &growth, sizeof(growth));
    _exit(written == sizeof(growth) ? 0 : 1);
  }
  close(fds[1]);
  int64_t growth = -1;
  if (pid < 0 || read(fds[0], &growth, sizeof(growth)) != sizeof(growth))
    growth = -1;
  close(fds[0]);
  int status = 0;
  if (pid > 0)
    waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? growth : -1;
}

TEST(MemoryPlan, MeasuredActivationsOfARunStepDoNotGrowWithDepth) {
  int64_t two = measuredStepBytes(config(2));
  int64_t twelve = measuredStepBytes(config(12));
  ASSERT_GT(two, 0);
  ASSERT_GT(twelve, 0);
  std::printf("measured growth during one step: 2 layers %.1f MiB, 12 "
              "layers %.1f MiB\n",
              double(two) / (1 << 20), double(twelve) / (1 << 20));
  EXPECT_LE(double(twelve), 1.15 * double(two))
      << "2 layers: " << two << " B, 12 layers: " << twelve << " B";
}

} // namespace
