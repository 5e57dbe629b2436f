//===- CpuCompiler.cpp - Lowered module → host code or JIT ----------------===//

#include "reformer/Target/Cpu/CpuCompiler.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace mlir::reformer;

LogicalResult
reformer::lowerForCpu(ModuleOp module, const CpuPipelineOptions &options,
                      function_ref<void(StringRef, ModuleOp)> afterStage,
                      StringRef stopAfter) {
  return runPipelineStages(module, getCpuPipelineStages(options), afterStage,
                           stopAfter);
}

static void initializeNativeTarget() {
  static bool done = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)done;
}

/// A target machine for `cpu`: "native" is this machine with every feature
/// it has; any other name is an LLVM CPU (x86-64-v3: AVX2 and FMA,
/// x86-64-v4: AVX-512, znver4, ...) with that CPU's features.
static std::unique_ptr<llvm::TargetMachine> targetMachine(StringRef cpu,
                                                          std::string &error) {
  initializeNativeTarget();
  llvm::Triple triple(llvm::sys::getProcessTriple());
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  bool native = cpu == "native";
  llvm::SubtargetFeatures features;
  if (native)
    for (const auto &[name, enabled] : llvm::sys::getHostCPUFeatures())
      features.AddFeature(name, enabled);
  std::string cpuName = native ? llvm::sys::getHostCPUName().str() : cpu.str();
  if (!native) {
    // Checked first: LLVM would warn and fall back to a generic CPU.
    std::unique_ptr<llvm::MCSubtargetInfo> info(
        target->createMCSubtargetInfo(triple, "", ""));
    if (!info || !info->isCPUStringValid(cpuName)) {
      error = "unknown CPU '" + cpuName +
              "' (try native, x86-64-v3 for AVX2 or x86-64-v4 for AVX-512)";
      return nullptr;
    }
  }
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpuName, features.getString(), options, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm)
    error = "cannot create a target machine for '" + cpuName + "'";
  return tm;
}

/// The vector features a module may use and the runtime checks before
/// loading it (the names of GCC's __builtin_cpu_supports).
static constexpr const char *kCheckedFeatures[] = {
    "sse4.2",   "avx",      "avx2",     "fma",        "bmi2",      "avx512f",
    "avx512dq", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16"};

static std::string featureList(const llvm::TargetMachine &tm) {
  std::string list;
  for (const char *feature : kCheckedFeatures)
    if (tm.getMCSubtargetInfo()->checkFeatures(std::string("+") + feature))
      list += (list.empty() ? "" : ",") + std::string(feature);
  return list;
}

FailureOr<int64_t> reformer::vectorLanesForCpu(StringRef cpu,
                                               std::string &error) {
  std::unique_ptr<llvm::TargetMachine> tm = targetMachine(cpu, error);
  if (!tm)
    return failure();
  const llvm::MCSubtargetInfo *info = tm->getMCSubtargetInfo();
  if (info->checkFeatures("+avx512f"))
    return 16;
  if (info->checkFeatures("+avx"))
    return 8;
  return 4;
}

/// Registers the translations to LLVM IR, and drops the `reformer.*`
/// argument and result attributes of LLVM functions: the manifest already
/// holds what they said, and the translation warns about every attribute it
/// does not know, printing the whole function each time (minutes for a
/// deep training step).
static void prepareTranslation(ModuleOp module) {
  DialectRegistry registry;
  registerAllToLLVMIRTranslations(registry);
  module.getContext()->appendDialectRegistry(registry);
  auto dropOurs = [](DictionaryAttr attrs) -> DictionaryAttr {
    if (!attrs)
      return attrs;
    SmallVector<NamedAttribute> kept;
    for (NamedAttribute attr : attrs)
      if (!attr.getName().strref().starts_with("reformer."))
        kept.push_back(attr);
    return DictionaryAttr::get(attrs.getContext(), kept);
  };
  // All at once: setting one argument's attributes rebuilds the list of
  // every argument's, quadratic in a deep training step's parameters.
  module.walk([&](LLVM::LLVMFuncOp func) {
    SmallVector<DictionaryAttr> args, results;
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      args.push_back(dropOurs(func.getArgAttrDict(i)));
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      results.push_back(dropOurs(func.getResultAttrDict(i)));
    func.setAllArgAttrs(args);
    func.setAllResultAttrs(results);
  });
}

std::unique_ptr<llvm::Module>
reformer::translateForHost(ModuleOp lowered, llvm::LLVMContext &context,
                           std::string &error, StringRef cpu) {
  prepareTranslation(lowered);
  std::unique_ptr<llvm::TargetMachine> tm = targetMachine(cpu, error);
  if (!tm)
    return nullptr;
  std::unique_ptr<llvm::Module> module =
      translateModuleToLLVMIR(lowered, context);
  if (!module) {
    error = "translation to LLVM IR failed";
    return nullptr;
  }
  module->setTargetTriple(tm->getTargetTriple());
  module->setDataLayout(tm->createDataLayout());
  // What the code may execute, for the runtime to check before loading.
  llvm::Constant *features =
      llvm::ConstantDataArray::getString(context, featureList(*tm));
  new llvm::GlobalVariable(*module, features->getType(), /*isConstant=*/true,
                           llvm::GlobalValue::ExternalLinkage, features,
                           "reformer_cpu_features");
  auto optimize = makeOptimizingTransformer(3, 0, tm.get());
  if (llvm::Error e = optimize(module.get())) {
    error = llvm::toString(std::move(e));
    return nullptr;
  }
  return module;
}

LogicalResult reformer::emitHostCode(llvm::Module &module,
                                     llvm::raw_pwrite_stream &os, bool assembly,
                                     std::string &error, StringRef cpu) {
  std::unique_ptr<llvm::TargetMachine> tm = targetMachine(cpu, error);
  if (!tm)
    return failure();
  llvm::legacy::PassManager pm;
  auto fileType = assembly ? llvm::CodeGenFileType::AssemblyFile
                           : llvm::CodeGenFileType::ObjectFile;
  if (tm->addPassesToEmitFile(pm, os, nullptr, fileType)) {
    error = "the host target cannot emit this file type";
    return failure();
  }
  pm.run(module);
  return success();
}

LogicalResult reformer::emitSharedLibrary(llvm::Module &module,
                                          const std::string &path, bool openmp,
                                          std::string &error, StringRef cpu) {
  std::string object = path + ".o.tmp";
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(object, ec);
    if (ec) {
      error = object + ": " + ec.message();
      return failure();
    }
    if (failed(emitHostCode(module, out, /*assembly=*/false, error, cpu))) {
      llvm::sys::fs::remove(object);
      return failure();
    }
  }
  LogicalResult linked = linkSharedLibrary(object, path, openmp, error);
  llvm::sys::fs::remove(object);
  return linked;
}

LogicalResult reformer::linkSharedLibrary(const std::string &object,
                                          const std::string &path, bool openmp,
                                          std::string &error) {
  auto cc = llvm::sys::findProgramByName("cc");
  if (!cc) {
    error = "no 'cc' on PATH to link the shared library (install gcc, or "
            "emit an object file)";
    return failure();
  }
  std::string tmp = path + ".tmp";
  SmallVector<llvm::StringRef> args = {*cc, "-shared", "-o",
                                       tmp, object,    "-lm"};
  if (openmp)
    args.push_back("-l:libomp.so.5");
  std::string message;
  int rc =
      llvm::sys::ExecuteAndWait(*cc, args, std::nullopt, {}, 0, 0, &message);
  if (rc != 0) {
    llvm::sys::fs::remove(tmp);
    error = "linking failed (" + *cc + " exited with " + std::to_string(rc) +
            (message.empty() ? "" : ": " + message) + ")";
    return failure();
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmp, path)) {
    error = path + ": " + ec.message();
    return failure();
  }
  return success();
}

CpuJit::CpuJit(std::unique_ptr<ExecutionEngine> engine)
    : engine(std::move(engine)) {}
CpuJit::~CpuJit() = default;

std::unique_ptr<CpuJit> CpuJit::create(ModuleOp lowered, std::string &error) {
  prepareTranslation(lowered);
  std::unique_ptr<llvm::TargetMachine> tm = targetMachine("native", error);
  if (!tm)
    return nullptr;
  auto optimize = makeOptimizingTransformer(3, 0, tm.get());
  ExecutionEngineOptions options;
  options.transformer = optimize;
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  auto engine = ExecutionEngine::create(lowered, options, std::move(tm));
  if (!engine) {
    error = llvm::toString(engine.takeError());
    return nullptr;
  }
  return std::unique_ptr<CpuJit>(new CpuJit(std::move(*engine)));
}

CpuJit::Entry CpuJit::lookup(StringRef function) const {
  auto symbol = engine->lookup(("reformer_entry_" + function).str());
  if (!symbol) {
    llvm::consumeError(symbol.takeError());
    return nullptr;
  }
  return reinterpret_cast<Entry>(*symbol);
}

const char *CpuJit::manifest() const {
  auto symbol = engine->lookup("reformer_abi");
  if (!symbol) {
    llvm::consumeError(symbol.takeError());
    return nullptr;
  }
  return static_cast<const char *>(*symbol);
}
