//===- GpuPipeline.h - Reformer model → NVVM kernels and host code -*- C++ -*-//
//
// The GPU pipeline shares the target-independent stages of the CPU pipeline
// (ABI, inference preparation, linalg, bufferization), then maps every
// parallel loop onto GPU blocks and threads, moves the remaining buffer
// work into one-thread kernels, lowers kernels to NVVM and the host code to
// LLVM with the same C entry points as the CPU target (its buffers come
// from the runtime's device allocator), and serializes the kernels (PTX,
// cubin or fatbin).
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_PIPELINES_GPUPIPELINE_H
#define REFORMER_PIPELINES_GPUPIPELINE_H

#include "reformer/Pipelines/CpuPipeline.h"

namespace mlir::reformer {

struct GpuPipelineOptions : public PassPipelineOptions<GpuPipelineOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip", llvm::cl::desc("GPU architecture (sm_90a, sm_80, ...)"),
      llvm::cl::init("sm_90a")};
  PassOptions::Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX version feature (empty: the oldest that supports "
                     "the chip and this toolkit's ptxas)"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc("CUDA toolkit directory (ptxas, libdevice); empty: the "
                     "one found when the compiler was built"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> format{
      *this, "format",
      llvm::cl::desc("Kernel serialization: isa (PTX), bin (cubin) or fatbin"),
      llvm::cl::init("fatbin")};
  PassOptions::Option<int64_t> threads{
      *this, "threads",
      llvm::cl::desc("Threads per block for elementwise loops"),
      llvm::cl::init(256)};
  PassOptions::Option<int64_t> vectorLanes{
      *this, "vector-lanes",
      llvm::cl::desc("f32 lanes of the attention blocks' vectors (4: 128-bit "
                     "accesses, no spills)"),
      llvm::cl::init(4)};
  PassOptions::Option<std::string> matmulPrecision{
      *this, "matmul-precision",
      llvm::cl::desc("Dense matmuls: bf16 (tensor cores, f32 accumulation "
                     "and master weights) or f32 (CUDA cores, the CPU's "
                     "results to rounding)"),
      llvm::cl::init("bf16")};
  PassOptions::Option<int64_t> gradBlockRun{
      *this, "grad-block-run",
      llvm::cl::desc("query chunks per thread of the attention gradient "
                     "(threads add atomically)"),
      llvm::cl::init(8)};
};

/// The PTX version feature for `chip` ("sm_80", "sm_90a", "sm_100", ...),
/// or "" when `chip` is not of that form or older than sm_70.
std::string ptxFeatureForChip(StringRef chip);

/// Whether `chip` has bf16 mma.sync (sm_80 or later).
bool chipHasBf16Mma(StringRef chip);

/// Whether `precision` is a value of the matmul-precision option.
bool isMatmulPrecision(StringRef precision);

/// The CUDA toolkit directory found at build time, or "".
StringRef defaultCudaToolkit();

/// The stages of the GPU pipeline, in order (names as for
/// --stop-after-stage and --dump-intermediates-to).
SmallVector<PipelineStage> getGpuPipelineStages(const GpuPipelineOptions &);

/// Adds every stage to `pm` (anchored on builtin.module).
LogicalResult buildGpuPipeline(OpPassManager &pm,
                               const GpuPipelineOptions &options);

void registerGpuPipeline();

} // namespace mlir::reformer

#endif // REFORMER_PIPELINES_GPUPIPELINE_H
