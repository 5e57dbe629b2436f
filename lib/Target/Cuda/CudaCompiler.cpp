//===- CudaCompiler.cpp - Lowered module → GPU shared library -------------===//

#include "reformer/Target/Cuda/CudaCompiler.h"

#include "reformer/Target/Cpu/CpuCompiler.h"

#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/Support/FileSystem.h"

using namespace mlir;
using namespace mlir::reformer;

FailureOr<std::string> reformer::findCudaToolkit(StringRef requested,
                                                 std::string &error) {
  std::string toolkit =
      requested.empty() ? defaultCudaToolkit().str() : requested.str();
  if (toolkit.empty()) {
    error = "no CUDA toolkit: the compiler was built without one; pass "
            "--cuda-path=DIR (the directory holding bin/ptxas)";
    return failure();
  }
  if (!llvm::sys::fs::exists(toolkit + "/bin/ptxas")) {
    error = "--cuda-path: " + toolkit + "/bin/ptxas does not exist";
    return failure();
  }
  return toolkit;
}

LogicalResult
reformer::lowerForCuda(ModuleOp module, const GpuPipelineOptions &options,
                       function_ref<void(StringRef, ModuleOp)> afterStage,
                       StringRef stopAfter) {
  return runPipelineStages(module, getGpuPipelineStages(options), afterStage,
                           stopAfter);
}

std::unique_ptr<llvm::Module>
reformer::translateCudaModule(ModuleOp lowered, llvm::LLVMContext &context,
                              std::string &error) {
  // The host side only allocates and launches: baseline x86-64 code runs on
  // any machine that has the GPU.
  std::unique_ptr<llvm::Module> module =
      translateForHost(lowered, context, error, "x86-64");
  if (!module)
    return nullptr;
  llvm::Constant *device = llvm::ConstantDataArray::getString(context, "cuda");
  new llvm::GlobalVariable(*module, device->getType(), /*isConstant=*/true,
                           llvm::GlobalValue::ExternalLinkage, device,
                           "reformer_device");
  return module;
}
