//===- Harness.h - Compile MLIR for the CPU and call it ---------*- C++ -*-===//

#ifndef REFORMER_UNITTESTS_NUMERICS_HARNESS_H
#define REFORMER_UNITTESTS_NUMERICS_HARNESS_H

#include "reformer/Target/Cpu/CpuCompiler.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace harness {

/// A module compiled through rf-cpu-pipeline and JIT-compiled.
class Compiled {
public:
  /// Compiles MLIR source; fails the current test on error.
  static std::unique_ptr<Compiled> fromSource(const std::string &source);
  /// Compiles MLIR source through `stages` (see fromModule).
  static std::unique_ptr<Compiled>
  fromSource(const std::string &source,
             llvm::ArrayRef<mlir::reformer::PipelineStage> stages);
  /// Compiles (and consumes) a module built in `context`.
  static std::unique_ptr<Compiled>
  fromModule(mlir::MLIRContext &context,
             mlir::OwningOpRef<mlir::ModuleOp> module);
  /// Compiles a module through `stages` instead of rf-cpu-pipeline; they
  /// must end in the LLVM dialect with entry points.
  static std::unique_ptr<Compiled>
  fromModule(mlir::OwningOpRef<mlir::ModuleOp> module,
             llvm::ArrayRef<mlir::reformer::PipelineStage> stages);

  /// Calls `reformer_entry_<function>` with the argument pointers in ABI
  /// order (inputs, then outputs).
  void call(const std::string &function, std::vector<void *> args) const;
  const char *manifest() const { return jit->manifest(); }

private:
  std::unique_ptr<mlir::reformer::CpuJit> jit;
};

/// The GPU pipeline's loop structure run on the CPU: its loops stage and
/// rf-map-loops-to-gpu (collapsed and tiled loops, scratch slots, serial
/// code wrapped for one-thread kernels), then the CPU's LLVM stage instead
/// of kernel outlining. Mapping attributes are ignored and the loops run
/// serially, so this checks without a GPU that the mapping rewrites keep
/// the numbers (not that iterations are independent). With `bf16`, the
/// pipeline is the bf16 one: the matmuls the GPU runs on tensor cores read
/// bf16-rounded operands and the fused attention kernels run as a CPU
/// emulation of their blocks.
llvm::SmallVector<mlir::reformer::PipelineStage>
gpuMappingOnCpuStages(bool bf16 = false);

/// Compiles `source` through the CPU pipeline or, with `gpuKernels`, the
/// bf16 GPU pipeline's stages with its tensor-core kernels emulated on the
/// CPU (gpuMappingOnCpuStages(true)); fails the current test on error.
std::unique_ptr<Compiled> compileSource(const std::string &source,
                                        bool gpuKernels);

/// A context with every dialect the pipeline needs.
std::unique_ptr<mlir::MLIRContext> makeContext();

std::vector<float> randomFloats(std::mt19937 &rng, size_t n, double scale);
std::vector<double> toDouble(const std::vector<float> &v);

/// max |actual − expected| / max |expected|: a norm-relative error, so
/// elements near zero do not dominate.
double relativeError(const std::vector<float> &actual,
                     const std::vector<double> &expected);

/// ∂f/∂x[i] for every i by central differences (h = 1e-5: truncation error
/// ~1e-10, far below the fp32 error of compiled gradients).
std::vector<double>
finiteDifferences(const std::function<double(const std::vector<double> &)> &f,
                  std::vector<double> x);
double dot(const std::vector<double> &a, const std::vector<double> &b);

/// Draws LSH inputs qk [B, H, L, D] and rotations [H, D, R, K] (N(0, 1))
/// until no hash's best two candidates are within `minMargin` of each other
/// (f32 rounding, or a finite-difference step, could flip such a bucket);
/// false after 40 tries.
bool drawUnambiguousLshInputs(std::mt19937 &rng, int64_t batch, int64_t heads,
                              int64_t len, int64_t dim, int64_t rounds,
                              const std::vector<int64_t> &factors,
                              double minMargin, std::vector<float> &qk,
                              std::vector<float> &rot);

/// One argument of a compiled function, from the ABI manifest.
struct AbiArg {
  std::string kind, name, dtype; ///< kind: input, param or output.
  std::vector<int64_t> shape;
  int64_t count() const;
};
/// The arguments of `function`, in call order, from the manifest text.
std::vector<AbiArg> argsOf(const char *manifest, const std::string &function);

/// A bf16 value as the top half of an f32 (truncating), and back.
uint16_t toBf16(float f);
float fromBf16(uint16_t h);

/// Writes the tensor type `tensor<AxBxf32>`.
std::string tensorType(const std::vector<int64_t> &shape,
                       const std::string &element = "f32");

} // namespace harness

#endif // REFORMER_UNITTESTS_NUMERICS_HARNESS_H
