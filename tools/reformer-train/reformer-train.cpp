//===- reformer-train.cpp - Train a Reformer with a compiled step ---------===//
//
// Compiles a model config (or preset; default: the duplication task) with
// its training step (rf-derive-training-step) into a CPU library, then runs
// the training loop of the runtime on it: byte files such as enwik8, the
// paper's duplication task, or images as pixel sequences. The library is
// cached in the output directory and reused while the model, the options
// and the compiler are unchanged; `--resume` continues a run bit for bit (on
// the CPU; the GPU's atomic gradient adds agree only to rounding).
//
//===----------------------------------------------------------------------===//

#include "reformer/Dialect/Reformer/Transforms/Passes.h"
#include "reformer/InitReformer.h"
#include "reformer/ModelBuilder/ModelBuilder.h"
#include "reformer/Runtime/Cuda.h"
#include "reformer/Runtime/Trainer.h"
#include "reformer/Target/Cpu/CpuCompiler.h"
#include "reformer/Target/Cuda/CudaCompiler.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/xxhash.h"

#include <iostream>

using namespace mlir;
using namespace mlir::reformer;
namespace cl = llvm::cl;
namespace rt = ::reformer::runtime;

/// A hash of this executable (its passes are linked in) and of the LLVM
/// version: a rebuilt compiler must not reuse a step the old one compiled.
static std::string compilerIdentity() {
  static int anchor;
  std::string self = llvm::sys::fs::getMainExecutable(nullptr, &anchor);
  auto bytes = llvm::MemoryBuffer::getFile(self, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  std::string identity = LLVM_VERSION_STRING;
  if (bytes)
    identity += "-" + llvm::utohexstr(llvm::xxh3_64bits((*bytes)->getBuffer()));
  return identity;
}

static cl::opt<std::string>
    configPath(cl::Positional, cl::desc("[model config .json]"), cl::init(""));
static cl::opt<std::string>
    presetName("preset",
               cl::desc("Train a built-in config (default: duplication)"),
               cl::init(""));
static cl::opt<std::string> task(
    "task",
    cl::desc("duplication (the paper's `0 w 0 w` task; the default without "
             "--data), bytes (the default with --data) or images"),
    cl::init(""));
static cl::opt<std::string>
    dataPath("data",
             cl::desc("A byte file in enwik8's format (--task=bytes; split "
                      "90/5/5 % into train/valid/test unless --train-range "
                      "and --valid-range say otherwise), or images "
                      "(--task=images: IDX files, .gz allowed, or "
                      "imagenet64's .npz batches)"),
             cl::init(""));
static cl::opt<std::string>
    trainRange("train-range", cl::desc("Bytes BEGIN:END of --data to train on"),
               cl::init(""));
static cl::opt<std::string>
    validRange("valid-range",
               cl::desc("Bytes BEGIN:END of --data to evaluate on"),
               cl::init(""));
static cl::opt<std::string>
    validData("valid-data",
              cl::desc("--task=images: IDX images to evaluate on (default: "
                       "the first images of --data)"),
              cl::init(""));
static cl::opt<int64_t> steps("steps", cl::desc("Training steps"),
                              cl::init(300));
static cl::opt<double> lr("lr", cl::desc("Peak learning rate"), cl::init(1e-3));
static cl::opt<int64_t> warmup("warmup",
                               cl::desc("Linear warmup steps, then rsqrt "
                                        "decay"),
                               cl::init(100));
static cl::opt<std::string>
    optimizerName("optimizer",
                  cl::desc("adam (trax's enwik8 settings) or adafactor (the "
                           "paper's choice)"),
                  cl::init("adam"));
static cl::opt<double> beta1("beta1", cl::desc("Adam β1"), cl::init(0.9));
static cl::opt<double> beta2("beta2", cl::desc("Adam β2"), cl::init(0.98));
static cl::opt<double> epsilon("adam-epsilon", cl::desc("Adam ε"),
                               cl::init(1e-9));
static cl::opt<double> weightDecay("weight-decay",
                                   cl::desc("AdamW decoupled weight decay"),
                                   cl::init(0.0));
static cl::opt<double>
    clipNorm("clip-norm",
             cl::desc("Clip gradients to this global L2 norm (0: off)"),
             cl::init(0.0));
static cl::opt<int64_t>
    evalEvery("eval-every", cl::desc("Evaluate every N steps"), cl::init(100));
static cl::opt<int64_t> evalBatches("eval-batches",
                                    cl::desc("Batches per evaluation"),
                                    cl::init(4));
static cl::opt<int64_t> printEvery("print-every",
                                   cl::desc("Progress line every N steps"),
                                   cl::init(10));
static cl::opt<int64_t> saveEvery("save-every",
                                  cl::desc("Checkpoint every N steps (and at "
                                           "the end)"),
                                  cl::init(0));
static cl::opt<uint64_t>
    seed("seed", cl::desc("Seed of the initialization and data"), cl::init(1));
static cl::opt<std::string>
    outDir("out",
           cl::desc("Directory for the compiled step, checkpoint, log.jsonl "
                    "and loss.png"),
           cl::init("reformer-train-out"));
static cl::opt<std::string>
    resumePath("resume",
               cl::desc("Continue from a checkpoint written by a previous run "
                        "(its steps count towards --steps)"),
               cl::init(""));
static cl::opt<bool> parallel("parallel", cl::desc("Use every core (OpenMP)"),
                              cl::init(true));
static cl::opt<std::string>
    device("device",
           cl::desc("Where the step runs: cpu (default) or cuda (the GPU "
                    "pipeline; needs the CUDA toolkit to compile and a GPU "
                    "to run)"),
           cl::init("cpu"));

static cl::opt<std::string> gpuMatmulPrecision(
    "gpu-matmul-precision",
    cl::desc("--device=cuda: dense matmuls in bf16 on the tensor cores with "
             "f32 accumulation and f32 weights (the default), or in f32"),
    cl::init("bf16"));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "reformer-train") << message << "\n";
  return 1;
}

static llvm::Expected<ModelConfig> loadConfig() {
  if (!configPath.empty() && !presetName.empty())
    return llvm::createStringError("give a config file or --preset, not both");
  if (configPath.empty())
    return getModelPreset(presetName.empty() ? std::string("duplication")
                                             : std::string(presetName));
  auto buffer = llvm::MemoryBuffer::getFile(configPath);
  if (!buffer)
    return llvm::createStringError(
        configPath + ": cannot read: " + buffer.getError().message());
  return parseModelConfig((*buffer)->getBuffer(), configPath);
}

/// Compiles `config` with its training step into OUT/model.so, unless the
/// library there was built from the same module and options.
static LogicalResult compileModel(const ModelConfig &config,
                                  std::string &library, std::string &error) {
  registerReformerPassesAndPipelines();
  DialectRegistry registry;
  registerReformerDialects(registry);
  MLIRContext context(registry);
  FailureOr<OwningOpRef<ModuleOp>> module =
      buildModel(&context, config, BuildOptions());
  if (failed(module)) {
    error = "the model does not verify (see the diagnostics above)";
    return failure();
  }
  PassManager pm(&context);
  RfDeriveTrainingStepOptions options;
  options.beta1 = beta1;
  options.beta2 = beta2;
  options.epsilon = epsilon;
  options.weightDecay = weightDecay;
  options.clipNorm = clipNorm;
  options.optimizer = optimizerName;
  pm.addPass(createRfDeriveTrainingStep(options));
  if (failed(pm.run(**module))) {
    error = "cannot derive the training step (see the diagnostics above)";
    return failure();
  }

  std::string text;
  llvm::raw_string_ostream os(text);
  (*module)->print(os);
  os << "parallel=" << bool(parallel) << " device=" << device;
  if (device == "cuda")
    os << " matmul-precision=" << gpuMatmulPrecision;
  os << " compiler=" << compilerIdentity();
  std::string key = llvm::utohexstr(llvm::xxh3_64bits(text));
  library = outDir + "/model.so";
  std::string keyPath = outDir + "/model.key";
  if (auto cached = llvm::MemoryBuffer::getFile(keyPath);
      cached && (*cached)->getBuffer() == key &&
      llvm::sys::fs::exists(library)) {
    std::cout << "using the compiled step in " << library << "\n";
    return success();
  }
  bool gpu = device == "cuda";
  std::cout << "compiling " << config.name
            << " with its training step (rf-derive-training-step, "
            << (gpu ? "rf-gpu-pipeline" : "rf-cpu-pipeline") << ") …"
            << std::endl;
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule;
  if (gpu) {
    FailureOr<std::string> toolkit = findCudaToolkit("", error);
    if (failed(toolkit))
      return failure();
    GpuPipelineOptions pipeline;
    pipeline.toolkit = *toolkit;
    pipeline.matmulPrecision = gpuMatmulPrecision;
    if (failed(lowerForCuda(**module, pipeline))) {
      error = "the GPU pipeline failed (see the diagnostics above)";
      return failure();
    }
    llvmModule = translateCudaModule(**module, llvmContext, error);
  } else {
    CpuPipelineOptions pipeline;
    pipeline.parallel = parallel;
    if (failed(lowerForCpu(**module, pipeline))) {
      error = "the CPU pipeline failed (see the diagnostics above)";
      return failure();
    }
    llvmModule = translateForHost(**module, llvmContext, error);
  }
  if (!llvmModule ||
      failed(emitSharedLibrary(*llvmModule, library, parallel && !gpu, error,
                               gpu ? "x86-64" : "native")))
    return failure();
  std::error_code ec;
  llvm::raw_fd_ostream keyFile(keyPath, ec);
  if (!ec)
    keyFile << key;
  return success();
}

/// `BEGIN:END` → offsets; empty text keeps the defaults.
static bool parseRange(const std::string &text, int64_t &begin, int64_t &end) {
  if (text.empty())
    return true;
  size_t colon = text.find(':');
  if (colon == std::string::npos)
    return false;
  char *rest;
  begin = std::strtoll(text.c_str(), &rest, 10);
  if (rest != text.c_str() + colon)
    return false;
  end = std::strtoll(text.c_str() + colon + 1, &rest, 10);
  return *rest == '\0' && begin >= 0 && end > begin;
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "Reformer training: compiles a model's training step and runs the "
      "training loop on the CPU\n");
  llvm::Expected<ModelConfig> config = loadConfig();
  if (!config)
    return fail(llvm::toString(config.takeError()));
  std::string kind = task.empty() ? (dataPath.empty() ? "duplication" : "bytes")
                                  : std::string(task);
  if (kind != "duplication" && kind != "bytes" && kind != "images")
    return fail("unknown --task '" + kind + "' (duplication, bytes or images)");
  if (optimizerName != "adam" && optimizerName != "adafactor")
    return fail("unknown --optimizer '" + optimizerName +
                "' (adam or adafactor)");
  if (kind != "duplication" && dataPath.empty())
    return fail("--task=" + kind + " needs --data=FILE");
  if (steps < 1 || evalBatches < 1 || printEvery < 1 || evalEvery < 0 ||
      saveEvery < 0 || warmup < 0 || !(lr > 0) || clipNorm < 0)
    return fail("--steps, --eval-batches and --print-every must be positive, "
                "--eval-every, --save-every, --warmup and --clip-norm "
                "non-negative, --lr positive");
  if (std::error_code ec = llvm::sys::fs::create_directories(outDir))
    return fail(outDir + ": " + ec.message());

  // Data first: a bad path should not wait for the compiler.
  int64_t len = config->seqLen;
  std::unique_ptr<rt::TokenSource> train, valid;
  if (kind == "duplication") {
    train = std::make_unique<rt::DuplicationTask>(len, config->vocabSize);
    valid = std::make_unique<rt::DuplicationTask>(len, config->vocabSize);
  } else if (kind == "bytes") {
    if (config->vocabSize < 256)
      return fail("--task=bytes needs a vocabulary of 256, the model has " +
                  llvm::Twine(config->vocabSize));
    uint64_t size;
    if (std::error_code ec = llvm::sys::fs::file_size(dataPath, size))
      return fail(dataPath + ": " + ec.message());
    // enwik8's split: 90 % train, 5 % valid, 5 % test.
    int64_t trainBegin = 0, trainEnd = int64_t(size) * 90 / 100;
    int64_t validBegin = trainEnd, validEnd = int64_t(size) * 95 / 100;
    if (!parseRange(trainRange, trainBegin, trainEnd) ||
        !parseRange(validRange, validBegin, validEnd))
      return fail("byte ranges are BEGIN:END with BEGIN < END");
    std::unique_ptr<rt::ByteCorpus> t, v;
    if (rt::Status s =
            rt::ByteCorpus::open(dataPath, trainBegin, trainEnd, len, t);
        !s)
      return fail(s.error);
    if (rt::Status s =
            rt::ByteCorpus::open(dataPath, validBegin, validEnd, len, v);
        !s)
      return fail(s.error);
    train = std::move(t);
    valid = std::move(v);
  } else {
    std::unique_ptr<rt::ImagePixels> t, v;
    if (rt::Status s = rt::ImagePixels::open(dataPath, len, t); !s)
      return fail(s.error);
    if (rt::Status s = rt::ImagePixels::open(
            validData.empty() ? std::string(dataPath) : validData, len, v);
        !s)
      return fail(s.error);
    if (config->vocabSize < 256)
      return fail("--task=images needs a vocabulary of 256 pixel values");
    train = std::move(t);
    valid = std::move(v);
  }

  if (device != "cpu" && device != "cuda")
    return fail("--device: expected cpu or cuda, got '" + device + "'");
  if (!isMatmulPrecision(gpuMatmulPrecision))
    return fail("--gpu-matmul-precision: expected bf16 or f32, got '" +
                gpuMatmulPrecision + "'");
  // Before compiling: without a GPU there is nothing to compile for.
  if (device == "cuda")
    if (rt::Status s = rt::cuda::initialize(); !s)
      return fail("--device=cuda: " + s.error);

  std::string library, error;
  if (failed(compileModel(*config, library, error)))
    return fail(error);
  rt::retainHeapAcrossCalls();
  std::unique_ptr<rt::LoadedModule> module;
  if (rt::Status s = rt::LoadedModule::open(library, module); !s)
    return fail(s.error);

  rt::TrainOptions options;
  options.steps = steps;
  options.lr = lr;
  options.warmup = warmup;
  options.evalEvery = evalEvery;
  options.evalBatches = evalBatches;
  options.printEvery = printEvery;
  options.saveEvery = saveEvery;
  options.seed = seed;
  options.outDir = outDir;
  std::unique_ptr<rt::Trainer> trainer;
  if (rt::Status s = rt::Trainer::create(std::move(module), options, trainer);
      !s)
    return fail(s.error);
  rt::Status started =
      resumePath.empty() ? trainer->initialize() : trainer->resume(resumePath);
  if (!started)
    return fail(started.error);
  std::cout << "training " << config->name << " (" << trainer->batchSize()
            << " × " << trainer->seqLen() << " tokens per step) on " << kind
            << (dataPath.empty() ? std::string() : " " + dataPath)
            << (resumePath.empty()
                    ? std::string()
                    : ", resumed at step " +
                          std::to_string(trainer->completedSteps()))
            << std::endl;
  if (rt::Status s =
          rt::runTraining(*trainer, *train, valid.get(), options, std::cout);
      !s)
    return fail(s.error);
  return 0;
}
