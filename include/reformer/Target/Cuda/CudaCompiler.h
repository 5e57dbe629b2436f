//===- CudaCompiler.h - Lowered module → GPU shared library -----*- C++ -*-===//
//
// The last steps of the GPU path: run rf-gpu-pipeline (kernels serialized
// as a fatbin inside the module), translate the host code to LLVM IR, and
// mark the result as a GPU module for the runtime. Shared libraries are
// linked like CPU ones (CpuCompiler.h); they resolve the runtime's mgpu*
// functions when loaded.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_TARGET_CUDA_CUDACOMPILER_H
#define REFORMER_TARGET_CUDA_CUDACOMPILER_H

#include "reformer/Pipelines/GpuPipeline.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/Module.h"

namespace mlir::reformer {

/// The CUDA toolkit to use: `requested`, or the one found at build time.
/// Fails with a message naming what is missing (bin/ptxas).
FailureOr<std::string> findCudaToolkit(StringRef requested, std::string &error);

/// Runs rf-gpu-pipeline on `module` in place, stage by stage (see
/// lowerForCpu).
LogicalResult
lowerForCuda(ModuleOp module, const GpuPipelineOptions &options,
             function_ref<void(StringRef stage, ModuleOp)> afterStage = {},
             StringRef stopAfter = "");

/// Host LLVM IR for a module lowered with format=fatbin: the kernels are
/// embedded and loaded by global constructors; `reformer_device` = "cuda"
/// tells the runtime to run it on the GPU.
std::unique_ptr<llvm::Module> translateCudaModule(ModuleOp lowered,
                                                  llvm::LLVMContext &context,
                                                  std::string &error);

} // namespace mlir::reformer

#endif // REFORMER_TARGET_CUDA_CUDACOMPILER_H
