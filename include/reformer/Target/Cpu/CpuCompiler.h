//===- CpuCompiler.h - Lowered module → host code or JIT --------*- C++ -*-===//
//
// The last steps of the CPU path: run rf-cpu-pipeline, translate to LLVM IR
// for the host CPU (its vector extensions included), optimize, and either
// write an object/assembly file or JIT-compile it in-process.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_TARGET_CPU_CPUCOMPILER_H
#define REFORMER_TARGET_CPU_CPUCOMPILER_H

#include "reformer/Pipelines/CpuPipeline.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace mlir::reformer {

/// Runs rf-cpu-pipeline on `module` in place, stage by stage; `afterStage`
/// sees the IR after each (for --dump-intermediates-to). Stops after the
/// stage named `stopAfter`, if any.
LogicalResult
lowerForCpu(ModuleOp module, const CpuPipelineOptions &options,
            function_ref<void(StringRef stage, ModuleOp)> afterStage = {},
            StringRef stopAfter = "");

/// Translates a lowered module to LLVM IR for `cpu` ("native": this
/// machine and every feature it has; or an LLVM CPU name such as x86-64-v3)
/// and optimizes it at -O3. The module records the vector features it may
/// use in `reformer_cpu_features`, which the runtime checks on load.
/// Errors go to `error`.
std::unique_ptr<llvm::Module> translateForHost(ModuleOp lowered,
                                               llvm::LLVMContext &context,
                                               std::string &error,
                                               StringRef cpu = "native");

/// Writes machine code for `module` and `cpu`: an object file, or assembly.
LogicalResult emitHostCode(llvm::Module &module, llvm::raw_pwrite_stream &os,
                           bool assembly, std::string &error,
                           StringRef cpu = "native");

/// f32 lanes of the widest vector register of `cpu` (16 with AVX-512, 8
/// with AVX, else 4), for rf-cpu-pipeline's vector-lanes; fails with a
/// message for an unknown CPU name.
FailureOr<int64_t> vectorLanesForCpu(StringRef cpu, std::string &error);

/// Links an object file into a shared library at `path` with the system
/// compiler driver (`cc`), through a temporary file renamed into place;
/// `openmp` adds libomp.
LogicalResult linkSharedLibrary(const std::string &object,
                                const std::string &path, bool openmp,
                                std::string &error);

/// Object code for `module` and `cpu` (through a temporary object file),
/// linked into a shared library at `path` as linkSharedLibrary does.
LogicalResult emitSharedLibrary(llvm::Module &module, const std::string &path,
                                bool openmp, std::string &error,
                                StringRef cpu = "native");

/// A lowered module compiled in-process; entry points are
/// `void reformer_entry_<function>(void **args)`.
class CpuJit {
public:
  using Entry = void (*)(void **);
  static std::unique_ptr<CpuJit> create(ModuleOp lowered, std::string &error);
  ~CpuJit();
  /// The entry point of `function`, or null.
  Entry lookup(StringRef function) const;
  /// The ABI manifest text (see docs/abi.md).
  const char *manifest() const;

private:
  explicit CpuJit(std::unique_ptr<ExecutionEngine> engine);
  std::unique_ptr<ExecutionEngine> engine;
};

} // namespace mlir::reformer

#endif // REFORMER_TARGET_CPU_CPUCOMPILER_H
