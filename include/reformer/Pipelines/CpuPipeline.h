//===- CpuPipeline.h - Reformer model → LLVM dialect for the CPU -*- C++ -*-=//

#ifndef REFORMER_PIPELINES_CPUPIPELINE_H
#define REFORMER_PIPELINES_CPUPIPELINE_H

#include "reformer/Conversion/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::reformer {

struct CpuPipelineOptions : public PassPipelineOptions<CpuPipelineOptions> {
  PassOptions::Option<bool> parallel{
      *this, "parallel",
      llvm::cl::desc("Run parallel loops on OpenMP threads (link libomp)"),
      llvm::cl::init(false)};
  PassOptions::Option<int64_t> vectorLanes{
      *this, "vector-lanes",
      llvm::cl::desc("f32 lanes per vector register for generated kernels "
                     "(0: those of the host CPU)"),
      llvm::cl::init(0)};
  PassOptions::Option<bool> arena{
      *this, "arena",
      llvm::cl::desc("Place each function's buffers in one arena at planned "
                     "offsets (rf-plan-arena)"),
      llvm::cl::init(false)};
};

/// f32 lanes of the widest vector registers of the host CPU: 16 with
/// AVX-512, 8 with AVX/AVX2, 4 otherwise.
int64_t hostVectorLanes();

/// The stages of the CPU pipeline, in order; `--dump-intermediates-to`
/// writes the IR after each.
struct PipelineStage {
  std::string name;
  std::string passes; ///< A textual pass pipeline on builtin.module.
};
SmallVector<PipelineStage> getCpuPipelineStages(const CpuPipelineOptions &);

/// Adds `stages` to `pm` (anchored on builtin.module), in order.
LogicalResult addPipelineStages(OpPassManager &pm,
                                ArrayRef<PipelineStage> stages);

/// Runs `stages` on `module` in order; `afterStage` sees the IR after each.
/// Stops after the stage named `stopAfter`, if any.
LogicalResult
runPipelineStages(ModuleOp module, ArrayRef<PipelineStage> stages,
                  function_ref<void(StringRef stage, ModuleOp)> afterStage,
                  StringRef stopAfter);

/// The stages every target shares: ABI, inference preparation, linalg and
/// bufferization. `attention` shapes the attention blocks for the target
/// (rf-convert-reformer-to-linalg's options).
SmallVector<PipelineStage> getTargetIndependentStages(
    const AttentionLoweringOptions &attention = AttentionLoweringOptions());

/// Adds every stage to `pm` (anchored on builtin.module).
LogicalResult buildCpuPipeline(OpPassManager &pm,
                               const CpuPipelineOptions &options);

void registerCpuPipeline();

} // namespace mlir::reformer

#endif // REFORMER_PIPELINES_CPUPIPELINE_H
