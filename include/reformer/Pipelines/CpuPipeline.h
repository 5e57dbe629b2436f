//===- CpuPipeline.h - Reformer model → LLVM dialect for the CPU -*- C++ -*-=//

#ifndef REFORMER_PIPELINES_CPUPIPELINE_H
#define REFORMER_PIPELINES_CPUPIPELINE_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::reformer {

struct CpuPipelineOptions : public PassPipelineOptions<CpuPipelineOptions> {
  PassOptions::Option<bool> parallel{
      *this, "parallel",
      llvm::cl::desc("Run parallel loops on OpenMP threads (link libomp)"),
      llvm::cl::init(false)};
};

/// The stages of the CPU pipeline, in order; `--dump-intermediates-to`
/// writes the IR after each.
struct PipelineStage {
  std::string name;
  std::string passes; ///< A textual pass pipeline on builtin.module.
};
SmallVector<PipelineStage> getCpuPipelineStages(const CpuPipelineOptions &);

/// Adds every stage to `pm` (anchored on builtin.module).
LogicalResult buildCpuPipeline(OpPassManager &pm,
                               const CpuPipelineOptions &options);

void registerCpuPipeline();

} // namespace mlir::reformer

#endif // REFORMER_PIPELINES_CPUPIPELINE_H
