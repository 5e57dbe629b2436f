//===- reformer-compile.cpp - Reformer model → CPU or GPU code ------------===//
//
// Takes a model config (JSON or preset) or a .mlir module through the CPU
// pipeline and writes a shared library with the C entry points and ABI
// manifest the runtime loads, or the IR at any stage (--emit,
// --stop-after-stage), or every intermediate (--dump-intermediates-to).
// With --target=cuda it runs the GPU pipeline and writes the kernels as PTX
// or cubin files, or the IR.
//
//===----------------------------------------------------------------------===//

#include "reformer/Analysis/MemoryPlan.h"
#include "reformer/InitReformer.h"
#include "reformer/ModelBuilder/ModelBuilder.h"
#include "reformer/Target/Cpu/CpuCompiler.h"
#include "reformer/Target/Cuda/CudaCompiler.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::reformer;
namespace cl = llvm::cl;

enum class Emit { SharedLibrary, Object, Assembly, LLVMIR, MLIR, PTX, Cubin };
enum class Target { Cpu, Cuda };

static cl::opt<std::string>
    inputPath(cl::Positional, cl::desc("<model .json or .mlir>"), cl::init(""));
static cl::opt<std::string>
    presetName("preset", cl::desc("Compile a built-in config"), cl::init(""));
static cl::opt<std::string>
    outputPath("o", cl::desc("Output file (default: NAME.so, or '-' for text)"),
               cl::value_desc("file"), cl::init(""));
static cl::opt<Emit> emitKind(
    "emit", cl::desc("What to write"), cl::init(Emit::SharedLibrary),
    cl::values(clEnumValN(Emit::SharedLibrary, "so", "a shared library"),
               clEnumValN(Emit::Object, "obj", "an object file"),
               clEnumValN(Emit::Assembly, "asm", "host assembly"),
               clEnumValN(Emit::LLVMIR, "llvm", "optimized LLVM IR"),
               clEnumValN(Emit::MLIR, "mlir",
                          "MLIR after the pipeline (or --stop-after-stage)"),
               clEnumValN(Emit::PTX, "ptx",
                          "--target=cuda: one PTX file per kernel module, in "
                          "the directory -o names"),
               clEnumValN(Emit::Cubin, "cubin",
                          "--target=cuda: one cubin per kernel module, in "
                          "the directory -o names")));
static cl::opt<Target>
    target("target", cl::desc("What to generate code for"),
           cl::init(Target::Cpu),
           cl::values(clEnumValN(Target::Cpu, "cpu", "this CPU (the default)"),
                      clEnumValN(Target::Cuda, "cuda",
                                 "NVIDIA GPUs (NVVM kernels, --gpu-chip)")));
static cl::opt<std::string> gpuChip("gpu-chip",
                                    cl::desc("--target=cuda: GPU architecture"),
                                    cl::init("sm_90a"));
static cl::opt<int64_t> gpuVectorLanes(
    "gpu-vector-lanes",
    cl::desc("--target=cuda: f32 lanes of the attention blocks' vectors "
             "(a power of two; wider vectors take more registers per thread)"),
    cl::init(4));
static cl::opt<std::string> gpuMatmulPrecision(
    "gpu-matmul-precision",
    cl::desc("--target=cuda: dense matmuls in bf16 on the tensor cores "
             "with f32 accumulation (the default; sm_80 or later), or in "
             "f32 on the CUDA cores"),
    cl::init("bf16"));
static cl::opt<std::string> cudaPath(
    "cuda-path",
    cl::desc("--target=cuda: CUDA toolkit directory (ptxas, libdevice); "
             "default: the one found when reformer-compile was built"),
    cl::init(""));
static cl::opt<std::string> stopAfter(
    "stop-after-stage",
    cl::desc("With --emit=mlir: stop after this stage (abi, prepared, "
             "linalg, bufferized, loops, then openmp, llvm for the CPU or "
             "kernels, nvvm, llvm, binary for CUDA)"),
    cl::init(""));
static cl::opt<std::string>
    dumpDir("dump-intermediates-to",
            cl::desc("Write the IR after every stage into this directory"),
            cl::init(""));
static cl::opt<bool> emitLoss("emit-loss",
                              cl::desc("For configs: also compile @loss"));
static cl::opt<bool> inlineLayers(
    "inline-layers",
    cl::desc("For configs: put every layer in @forward (and in the training "
             "step) instead of one function per kind of layer"));
static cl::opt<bool> emitTrainStep(
    "emit-train-step",
    cl::desc("Also derive and compile @train_step (forward, backward with "
             "reversible recomputation, Adam; rf-derive-training-step)"));
static cl::opt<std::string> trainOptions(
    "train-step-options",
    cl::desc("Options of rf-derive-training-step, e.g. \"beta2=0.98 "
             "weight-decay=0.01\""),
    cl::init(""));
static cl::opt<bool> printPlan(
    "print-memory-plan",
    cl::desc("Print each function's planned peak buffer memory, before "
             "anything runs (after bufferization; --target=cuda: after "
             "kernel mapping, the device arena included)"));
static cl::opt<bool> cpuArena(
    "arena",
    cl::desc("--target=cpu: place each function's buffers in one arena at "
             "planned offsets (--target=cuda always does)"),
    cl::init(false));
static cl::opt<bool> parallel(
    "parallel",
    cl::desc("Run parallel loops on OpenMP threads, linking libomp "
             "(default; --parallel=false for a single-threaded library)"),
    cl::init(true));

static cl::opt<std::string> targetCpu(
    "cpu",
    cl::desc("CPU to generate code for: native (this machine, the default), "
             "or an LLVM CPU name such as x86-64-v3 (AVX2) or x86-64-v4 "
             "(AVX-512); the runtime refuses to load code whose vector "
             "features the running CPU lacks"),
    cl::init("native"));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "reformer-compile") << message << "\n";
  return 1;
}

/// The module to compile, from a config, a preset or MLIR source.
static OwningOpRef<ModuleOp> loadInput(MLIRContext &context,
                                       std::string &error) {
  if (!presetName.empty() == !inputPath.empty()) {
    error = "give exactly one of a .json/.mlir file or --preset=NAME";
    return nullptr;
  }
  llvm::Expected<ModelConfig> config = llvm::createStringError("");
  if (!presetName.empty()) {
    config = getModelPreset(presetName);
  } else if (llvm::StringRef(inputPath).ends_with(".mlir")) {
    llvm::consumeError(config.takeError());
    llvm::SourceMgr sourceMgr;
    std::string why;
    auto file = openInputFile(inputPath, &why);
    if (!file) {
      error = inputPath + ": " + why;
      return nullptr;
    }
    sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
    OwningOpRef<ModuleOp> module =
        parseSourceFile<ModuleOp>(sourceMgr, &context);
    if (!module)
      error = inputPath + ": cannot parse (see the diagnostics above)";
    return module;
  } else {
    auto buffer = llvm::MemoryBuffer::getFile(inputPath);
    if (!buffer) {
      error = inputPath + ": cannot read: " + buffer.getError().message();
      return nullptr;
    }
    config = parseModelConfig((*buffer)->getBuffer(), inputPath);
  }
  if (!config) {
    error = llvm::toString(config.takeError());
    return nullptr;
  }
  BuildOptions options;
  options.emitLoss = emitLoss;
  options.layerFunctions = !inlineLayers;
  FailureOr<OwningOpRef<ModuleOp>> module =
      buildModel(&context, *config, options);
  if (failed(module)) {
    error = "the model does not verify (see the diagnostics above)";
    return nullptr;
  }
  return std::move(*module);
}

static std::string defaultOutput(ModuleOp module) {
  if (emitKind == Emit::PTX || emitKind == Emit::Cubin)
    return "kernels";
  if (emitKind == Emit::LLVMIR || emitKind == Emit::MLIR ||
      emitKind == Emit::Assembly)
    return "-";
  std::string stem =
      module.getSymName() ? module.getSymName()->str() : std::string("module");
  return stem + (emitKind == Emit::Object ? ".o" : ".so");
}

static LogicalResult writeText(const std::string &path,
                               llvm::function_ref<void(llvm::raw_ostream &)> fn,
                               std::string &error) {
  if (llvm::Error e = llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
        fn(os);
        return llvm::Error::success();
      })) {
    error = path + ": " + llvm::toString(std::move(e));
    return failure();
  }
  return success();
}

/// The memory plan of every public function, on stdout.
static LogicalResult printMemoryPlans(ModuleOp module) {
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isPrivate() || func.isExternal())
      continue;
    FailureOr<MemoryPlan> plan = computeMemoryPlan(func);
    if (failed(plan))
      return failure();
    printMemoryPlan(*plan, func.getSymName(), llvm::outs());
  }
  return success();
}

/// Writes every kernel module's object (PTX text or cubin) into `dir`, one
/// file per module, named after it.
static LogicalResult writeKernelObjects(ModuleOp module, const std::string &dir,
                                        StringRef extension,
                                        std::string &error) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir)) {
    error = dir + ": " + ec.message();
    return failure();
  }
  for (auto binary : module.getOps<gpu::BinaryOp>())
    for (Attribute attr : binary.getObjects()) {
      auto object = cast<gpu::ObjectAttr>(attr);
      std::string path =
          (llvm::Twine(dir) + "/" + binary.getSymName() + "." + extension)
              .str();
      if (failed(writeText(
              path,
              [&](llvm::raw_ostream &os) {
                os << object.getObject().getValue();
              },
              error)))
        return failure();
    }
  return success();
}

/// The stages of the chosen target's pipeline; `hostCpu` and `openmp`
/// describe the host code it produces.
static FailureOr<SmallVector<PipelineStage>>
pipelineStages(std::string &hostCpu, bool &openmp, std::string &error) {
  if (target == Target::Cuda) {
    if (targetCpu != "native") {
      error = "--cpu applies to --target=cpu; the GPU target's host code "
              "is baseline x86-64";
      return failure();
    }
    FailureOr<std::string> toolkit = findCudaToolkit(cudaPath, error);
    if (failed(toolkit))
      return failure();
    if (ptxFeatureForChip(gpuChip).empty()) {
      error = "--gpu-chip: expected an NVIDIA architecture sm_70 or later "
              "(sm_80, sm_90a, sm_100, ...), got '" +
              gpuChip + "'";
      return failure();
    }
    if (gpuVectorLanes < 1 || gpuVectorLanes > 64 ||
        (gpuVectorLanes & (gpuVectorLanes - 1)) != 0) {
      error = "--gpu-vector-lanes: expected a power of two from 1 to 64, "
              "got " +
              std::to_string(gpuVectorLanes);
      return failure();
    }
    if (!isMatmulPrecision(gpuMatmulPrecision)) {
      error = "--gpu-matmul-precision: expected bf16 or f32, got '" +
              gpuMatmulPrecision + "'";
      return failure();
    }
    if (gpuMatmulPrecision == "bf16" && !chipHasBf16Mma(gpuChip)) {
      error = "--gpu-matmul-precision=bf16 needs tensor-core bf16 (sm_80 or "
              "later); " +
              gpuChip + " needs --gpu-matmul-precision=f32";
      return failure();
    }
    GpuPipelineOptions options;
    options.chip = gpuChip;
    options.matmulPrecision = gpuMatmulPrecision;
    options.vectorLanes = gpuVectorLanes;
    options.toolkit = *toolkit;
    options.format = emitKind == Emit::Cubin ? "bin"
                     : emitKind == Emit::PTX ? "isa"
                                             : "fatbin";
    // The host side only allocates and launches: baseline x86-64.
    hostCpu = "x86-64";
    openmp = false;
    return getGpuPipelineStages(options);
  }
  if (emitKind == Emit::PTX || emitKind == Emit::Cubin) {
    error = "--emit=ptx and --emit=cubin need --target=cuda";
    return failure();
  }
  CpuPipelineOptions options;
  options.parallel = parallel;
  options.arena = cpuArena;
  FailureOr<int64_t> lanes = vectorLanesForCpu(targetCpu, error);
  if (failed(lanes))
    return failure();
  options.vectorLanes = *lanes;
  hostCpu = targetCpu;
  openmp = parallel;
  return getCpuPipelineStages(options);
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  registerReformerPassesAndPipelines();
  cl::ParseCommandLineOptions(argc, argv,
                              "Reformer compiler: model -> CPU or GPU code\n");

  DialectRegistry registry;
  registerReformerDialects(registry);
  MLIRContext context(registry);
  std::string error;
  OwningOpRef<ModuleOp> module = loadInput(context, error);
  if (!module)
    return fail(error);
  std::string output = outputPath.empty() ? defaultOutput(*module) : outputPath;
  if (emitTrainStep) {
    PassManager pm(&context);
    if (failed(parsePassPipeline(
            "rf-derive-training-step{" + trainOptions + "}", pm, llvm::errs())))
      return fail("invalid --train-step-options '" + trainOptions + "'");
    if (failed(pm.run(*module)))
      return fail("cannot derive the training step (see the diagnostics "
                  "above)");
  }

  std::string hostCpu;
  bool openmp = false;
  FailureOr<SmallVector<PipelineStage>> stages =
      pipelineStages(hostCpu, openmp, error);
  if (failed(stages))
    return fail(error);
  if (!stopAfter.empty() && llvm::none_of(*stages, [](const PipelineStage &s) {
        return s.name == stopAfter;
      }))
    return fail("unknown stage '" + stopAfter + "'");
  if (!stopAfter.empty() && emitKind != Emit::MLIR)
    return fail("--stop-after-stage needs --emit=mlir");
  // On the GPU, after the scratch of the kernels is placed in the arena:
  // what the device will hold.
  StringRef planStage = target == Target::Cuda ? "kernels" : "bufferized";
  if (printPlan && !stopAfter.empty()) {
    auto position = [&](StringRef name) {
      return llvm::find_if(
          *stages, [&](const PipelineStage &s) { return s.name == name; });
    };
    if (position(stopAfter) < position(planStage))
      return fail("--print-memory-plan plans after the '" + planStage +
                  "' stage, which --stop-after-stage=" + stopAfter +
                  " does not reach");
  }

  int stageNumber = 0;
  auto dump = [&](StringRef name, ModuleOp m) -> LogicalResult {
    if (dumpDir.empty())
      return success();
    std::string path =
        (llvm::Twine(dumpDir) + "/" +
         llvm::formatv("{0:2}-{1}.mlir", stageNumber++, name).str())
            .str();
    return writeText(
        path, [&](llvm::raw_ostream &os) { m.print(os); }, error);
  };
  if (!dumpDir.empty()) {
    if (std::error_code ec = llvm::sys::fs::create_directories(dumpDir))
      return fail(dumpDir + ": " + ec.message());
    if (failed(dump("input", *module)))
      return fail(error);
  }

  LogicalResult dumped = success();
  if (failed(runPipelineStages(
          *module, *stages,
          [&](StringRef stage, ModuleOp m) {
            if (succeeded(dumped))
              dumped = dump(stage, m);
            if (printPlan && stage == planStage && succeeded(dumped) &&
                failed(printMemoryPlans(m))) {
              error = "cannot plan the memory (see the diagnostics above)";
              dumped = failure();
            }
          },
          stopAfter)))
    return fail(llvm::Twine("the ") + (target == Target::Cuda ? "GPU" : "CPU") +
                " pipeline failed (see the diagnostics above)");
  if (failed(dumped))
    return fail(error);
  bool stopped = !stopAfter.empty();
  if (emitKind == Emit::MLIR || stopped) {
    if (failed(writeText(
            output, [&](llvm::raw_ostream &os) { module->print(os); }, error)))
      return fail(error);
    return 0;
  }
  if (emitKind == Emit::PTX || emitKind == Emit::Cubin) {
    if (failed(writeKernelObjects(
            *module, output, emitKind == Emit::Cubin ? "cubin" : "ptx", error)))
      return fail(error);
    return 0;
  }

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      target == Target::Cuda
          ? translateCudaModule(*module, llvmContext, error)
          : translateForHost(*module, llvmContext, error, targetCpu);
  if (!llvmModule)
    return fail(error);
  if (!dumpDir.empty() &&
      failed(writeText(
          dumpDir + "/" +
              llvm::formatv("{0:2}-optimized.ll", stageNumber++).str(),
          [&](llvm::raw_ostream &os) { llvmModule->print(os, nullptr); },
          error)))
    return fail(error);
  if (emitKind == Emit::LLVMIR) {
    if (failed(writeText(
            output,
            [&](llvm::raw_ostream &os) { llvmModule->print(os, nullptr); },
            error)))
      return fail(error);
    return 0;
  }

  if (emitKind == Emit::SharedLibrary) {
    if (failed(emitSharedLibrary(*llvmModule, output, openmp, error, hostCpu)))
      return fail(error);
    return 0;
  }
  std::error_code ec;
  llvm::ToolOutputFile out(output, ec,
                           emitKind == Emit::Assembly ? llvm::sys::fs::OF_Text
                                                      : llvm::sys::fs::OF_None);
  if (ec)
    return fail(output + ": " + ec.message());
  if (failed(emitHostCode(*llvmModule, out.os(), emitKind == Emit::Assembly,
                          error, hostCpu)))
    return fail(error);
  out.keep();
  return 0;
}
