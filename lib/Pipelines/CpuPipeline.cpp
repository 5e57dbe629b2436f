//===- CpuPipeline.cpp - Reformer model → LLVM dialect for the CPU --------===//

#include "reformer/Pipelines/CpuPipeline.h"

#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace mlir::reformer;

int64_t reformer::hostVectorLanes() {
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  if (features.lookup("avx512f"))
    return 16;
  if (features.lookup("avx"))
    return 8;
  return 4;
}

LogicalResult reformer::addPipelineStages(OpPassManager &pm,
                                          ArrayRef<PipelineStage> stages) {
  for (const PipelineStage &stage : stages)
    if (failed(parsePassPipeline(stage.passes, pm, llvm::errs())))
      return failure();
  return success();
}

LogicalResult
reformer::runPipelineStages(ModuleOp module, ArrayRef<PipelineStage> stages,
                            function_ref<void(StringRef, ModuleOp)> afterStage,
                            StringRef stopAfter) {
  for (const PipelineStage &stage : stages) {
    PassManager pm(module.getContext());
    if (failed(addPipelineStages(pm, stage)) || failed(pm.run(module)))
      return failure();
    if (afterStage)
      afterStage(stage.name, module);
    if (stage.name == stopAfter)
      break;
  }
  return success();
}

SmallVector<PipelineStage> reformer::getTargetIndependentStages(
    const AttentionLoweringOptions &attention) {
  SmallVector<PipelineStage> stages = {
      // Record the ABI while signatures are still tensors.
      {"abi", "rf-record-abi"},
      {"prepared", "rf-prepare-inference"},
      // cse merges the zero-filled accumulators of different matmuls;
      // rf-unshare-fills splits them again so bufferization need not copy.
      {"linalg",
       "rf-convert-reformer-to-linalg{max-block-run=" +
           std::to_string(attention.maxBlockRun) +
           " vector-lanes=" + std::to_string(attention.vectorLanes) +
           " grad-block-run=" + std::to_string(attention.gradBlockRun) +
           " sort-tiles=" + std::to_string(attention.sortTiles) +
           " outline-attention=" + std::to_string(attention.outlineAttention) +
           "},"
           "func.func(convert-elementwise-to-linalg),canonicalize,cse,"
           "func.func(rf-unshare-fills)"},
      // A tensor that ends up inserted into a bigger one (an FFN chunk's
      // rows, a half of the axial position table) is computed in place in
      // that tensor's buffer, not in a buffer of its own copied over.
      // Inputs stay read-only (rf-record-abi); results become out-params so
      // the entry points take only pointers. The deallocation pipeline frees
      // buffers at the end of their block; optimize-allocation-liveness
      // moves each free to right after the buffer's last use, so a training
      // step holds only what its backward still needs; gradients are kept in
      // their parameters' output buffers, and a call's results that the
      // caller returns are written straight into the caller's outputs.
      {"bufferized", "eliminate-empty-tensors,"
                     "one-shot-bufferize{bufferize-function-boundaries=1 "
                     "function-boundary-type-conversion=identity-layout-map},"
                     "canonicalize,buffer-results-to-out-params{hoist-static-"
                     "allocs=1 modify-public-functions=1},"
                     "func.func(rf-forward-call-results),"
                     "buffer-deallocation-pipeline,"
                     "func.func(optimize-allocation-liveness),"
                     "func.func(rf-place-gradients-in-outputs),canonicalize"},
  };
  return stages;
}

SmallVector<PipelineStage>
reformer::getCpuPipelineStages(const CpuPipelineOptions &options) {
  int64_t lanes =
      options.vectorLanes ? int64_t(options.vectorLanes) : hostVectorLanes();
  // Register blocks of rows × 2 vectors: 16 accumulators fit the 32 zmm
  // registers of AVX-512; 12 fit the 16 registers of AVX2 and SSE.
  int64_t rows = lanes >= 16 ? 8 : 6;
  std::string matmuls =
      "func.func(rf-vectorize-matmuls{lanes=" + std::to_string(lanes) +
      " rows=" + std::to_string(rows) + "}),";
  SmallVector<PipelineStage> stages = getTargetIndependentStages();
  stages.push_back(
      // Chunk loops (scf.forall) become scf.parallel before the matmuls are
      // vectorized: matmuls inside them then stay on one core.
      {"loops",
       std::string(options.arena ? "func.func(rf-plan-arena)," : "") +
           "func.func(scf-forall-to-parallel),rf-expand-strided-copies," +
           matmuls +
           "func.func(rf-parallelize-linalg,convert-linalg-to-loops),"
           "rf-approximate-math,rf-expand-bf16,"
           "convert-vector-to-scf,"
           "convert-bufferization-to-memref,canonicalize,cse"});
  if (options.parallel)
    stages.push_back({"openmp", "convert-scf-to-openmp"});
  // memref lowering precedes scf-to-cf: the OpenMP conversion wraps loop
  // bodies in memref.alloca_scope, which needs the structured form.
  std::string llvm =
      "expand-strided-metadata,lower-affine,"
      "convert-math-to-llvm,convert-math-to-libm,"
      "convert-vector-to-llvm{vector-transpose-lowering=shuffle16x16},"
      "finalize-memref-to-llvm,"
      "convert-scf-to-cf,"
      "convert-func-to-llvm{use-bare-ptr-memref-call-conv=1},";
  // After func-to-llvm: the OpenMP conversion would otherwise convert the
  // functions itself, without bare pointers.
  if (options.parallel)
    llvm += "convert-openmp-to-llvm,";
  llvm += "convert-to-llvm,reconcile-unrealized-casts,rf-emit-entry-points,"
          "canonicalize";
  stages.push_back({"llvm", llvm});
  return stages;
}

LogicalResult reformer::buildCpuPipeline(OpPassManager &pm,
                                         const CpuPipelineOptions &options) {
  return addPipelineStages(pm, getCpuPipelineStages(options));
}

void reformer::registerCpuPipeline() {
  PassPipelineRegistration<CpuPipelineOptions>(
      "rf-cpu-pipeline",
      "Lower a Reformer model to the LLVM dialect for the CPU, with C entry "
      "points and the ABI manifest",
      [](OpPassManager &pm, const CpuPipelineOptions &options) {
        if (failed(buildCpuPipeline(pm, options)))
          llvm::report_fatal_error("rf-cpu-pipeline: invalid stage");
      });
}
