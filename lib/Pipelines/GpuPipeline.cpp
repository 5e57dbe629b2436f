//===- GpuPipeline.cpp - Reformer model → NVVM kernels and host code ------===//

#include "reformer/Pipelines/GpuPipeline.h"

#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::reformer;

StringRef reformer::defaultCudaToolkit() { return REFORMER_CUDA_TOOLKIT_DIR; }

/// NN of "sm_NN", "sm_NNa" or "sm_NNf", or 0.
static unsigned chipVersion(StringRef chip) {
  unsigned version = 0;
  if (!chip.consume_front("sm_"))
    return 0;
  if (!chip.consume_back("a"))
    chip.consume_back("f"); // arch- and family-specific variants
  if (chip.getAsInteger(10, version))
    return 0;
  return version;
}

bool reformer::chipHasBf16Mma(StringRef chip) {
  return chipVersion(chip) >= 80;
}

std::string reformer::ptxFeatureForChip(StringRef chip) {
  unsigned version = chipVersion(chip);
  if (version < 70)
    return "";
  // Blackwell needs PTX 8.7 or later (8.8 covers every sm_1xx LLVM knows);
  // PTX 8.1 covers Volta to Hopper and lifts the kernel-argument limit from
  // 4 KB to 32 KB, which the merged optimizer update needs.
  return version >= 100 ? "+ptx88" : "+ptx81";
}

bool reformer::isMatmulPrecision(StringRef precision) {
  return precision == "bf16" || precision == "f32";
}

SmallVector<PipelineStage>
reformer::getGpuPipelineStages(const GpuPipelineOptions &options) {
  // One query chunk per attention iteration: each becomes its own GPU
  // block, instead of a thread walking 16 chunks. Vectors of 4 lanes (the
  // default) are 128-bit accesses and keep one thread's register tiles
  // small enough not to spill (16-lane tiles took 255 registers and 6-8 KB
  // of spills).
  // The attention gradient walks runs of query chunks (8 by default) per
  // thread, adding atomically: 32x the threads of one per (batch, head) at
  // L 16384, with per-thread scratch kept to a few hundred MiB. The LSH
  // sort runs 16 tiles per sequence in parallel.
  // In bf16, each LSH attention's blocks are outlined for the fused
  // tensor-core kernel (rf-lower-attention-to-mma).
  bool bf16 = options.matmulPrecision.getValue() == "bf16";
  SmallVector<PipelineStage> stages = getTargetIndependentStages(
      {/*maxBlockRun=*/1, options.vectorLanes, options.gradBlockRun,
       /*sortTiles=*/16, /*outlineAttention=*/bf16});
  std::string toolkit = options.toolkit.empty() ? defaultCudaToolkit().str()
                                                : options.toolkit.getValue();
  // Matmuls get the whole GPU: the chunked FFN's chunks run one after
  // the other, and in bf16 each matmul is a tensor-core kernel. Every copy
  // becomes a loop (a host memcpy cannot reach device memory); the other
  // linalg ops become parallel loops with their reductions serial inside.
  std::string matmuls = "func.func(rf-serialize-matmul-foralls),";
  if (bf16)
    matmuls += "rf-lower-attention-to-mma,"
               "func.func(rf-lower-matmuls-to-mma),";
  stages.push_back(
      {"loops",
       matmuls + "func.func(scf-forall-to-parallel),"
                 "rf-expand-strided-copies{parallel-bytes=1},"
                 "func.func(rf-fuse-optimizer-updates),"
                 "func.func(convert-linalg-to-parallel-loops),rf-expand-bf16,"
                 "convert-vector-to-scf{full-unroll=1},"
                 "convert-bufferization-to-memref,"
                 "canonicalize,cse"});
  stages.push_back(
      {"kernels", "func.func(rf-map-loops-to-gpu{threads=" +
                      std::to_string(options.threads) +
                      "}),func.func(rf-plan-arena),"
                      "func.func(convert-parallel-loops-to-gpu),"
                      "canonicalize,gpu-launch-sink-index-computations,"
                      "gpu-kernel-outlining,rf-name-kernels,"
                      "canonicalize,cse"});
  std::string features = options.features.empty()
                             ? ptxFeatureForChip(options.chip)
                             : options.features.getValue();
  // libdevice comes from the toolkit: math ops call __nv_* functions.
  stages.push_back(
      {"nvvm", "nvvm-attach-target{chip=" + options.chip.getValue() +
                   " features=" + features +
                   " O=3},"
                   "gpu.module(expand-strided-metadata,lower-affine,"
                   "convert-scf-to-cf,convert-vector-to-llvm,"
                   "convert-gpu-to-nvvm,canonicalize,"
                   "reconcile-unrealized-casts)"});
  // Host buffers are allocated through _mlir_memref_to_llvm_alloc/free,
  // which the GPU runtime serves from device memory (kernels keep their own
  // scratch allocations, lowered separately above).
  stages.push_back({"llvm",
                    "expand-strided-metadata,lower-affine,convert-scf-to-cf,"
                    "finalize-memref-to-llvm{use-generic-functions=1},"
                    "gpu-to-llvm{use-bare-pointers-for-host=1},"
                    "convert-func-to-llvm{use-bare-ptr-memref-call-conv=1},"
                    "convert-to-llvm,reconcile-unrealized-casts,"
                    "rf-emit-entry-points,canonicalize"});
  stages.push_back(
      {"binary", "gpu-module-to-binary{format=" + options.format.getValue() +
                     " toolkit=" + toolkit + "}"});
  return stages;
}

LogicalResult reformer::buildGpuPipeline(OpPassManager &pm,
                                         const GpuPipelineOptions &options) {
  if (!isMatmulPrecision(options.matmulPrecision) ||
      (options.matmulPrecision.getValue() == "bf16" &&
       !chipHasBf16Mma(options.chip)))
    return failure();
  return addPipelineStages(pm, getGpuPipelineStages(options));
}

void reformer::registerGpuPipeline() {
  PassPipelineRegistration<GpuPipelineOptions>(
      "rf-gpu-pipeline",
      "Lower a Reformer model to NVVM kernels and LLVM host code with C "
      "entry points and the ABI manifest",
      [](OpPassManager &pm, const GpuPipelineOptions &options) {
        if (ptxFeatureForChip(options.chip).empty())
          llvm::report_fatal_error("rf-gpu-pipeline: chip '" +
                                   llvm::Twine(options.chip) +
                                   "' is not sm_70 or later (sm_NN[a])");
        if (!isMatmulPrecision(options.matmulPrecision))
          llvm::report_fatal_error("rf-gpu-pipeline: matmul-precision '" +
                                   llvm::Twine(options.matmulPrecision) +
                                   "' is not bf16 or f32");
        if (options.matmulPrecision.getValue() == "bf16" &&
            !chipHasBf16Mma(options.chip))
          llvm::report_fatal_error(
              "rf-gpu-pipeline: bf16 matmuls need sm_80 or later; use "
              "matmul-precision=f32 for '" +
              llvm::Twine(options.chip) + "'");
        if (failed(buildGpuPipeline(pm, options)))
          llvm::report_fatal_error("rf-gpu-pipeline: invalid stage");
      });
}
