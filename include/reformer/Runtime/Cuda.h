//===- Cuda.h - The CUDA side of the runtime --------------------*- C++ -*-===//
//
// GPU modules (reformer-compile --target=cuda) call the `mgpu*` functions
// MLIR's host lowering emits, and allocate their buffers through
// `_mlir_memref_to_llvm_alloc/free`. This library implements both over the
// CUDA driver API, which it loads with dlopen at first use: programs start
// on machines without a GPU and report that cleanly.
//
// Errors cannot travel through the generated code, so the first one is
// kept (naming the kernel or module) and every later GPU call is skipped;
// `synchronize()` returns it. All work goes to one stream, in order, so a
// freed buffer can be handed to a later kernel at once; freed blocks stay
// in a pool, so steady-state steps call no cuMemAlloc.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_RUNTIME_CUDA_H
#define REFORMER_RUNTIME_CUDA_H

#include "reformer/Runtime/Tensor.h"

#include <cstddef>
#include <string>
#include <vector>

namespace reformer::runtime::cuda {

/// Loads libcuda.so.1 and makes device 0's primary context current; fails
/// with "no CUDA driver (...)" or "no CUDA GPU (...)". Cheap after the
/// first call.
Status initialize();

/// The device's name, e.g. "NVIDIA H100 80GB HBM3" (after initialize()).
std::string deviceName();

/// Device memory from the pool; null after an error.
void *allocate(size_t bytes);
void release(void *pointer);
Status copyToDevice(void *device, const void *host, size_t bytes);
Status copyToHost(void *host, const void *device, size_t bytes);

/// Waits for all queued work; returns the first error since the last call
/// (and clears it).
Status synchronize();

/// Largest number of device bytes the pool has held at once.
size_t peakPoolBytes();

struct KernelInfo {
  std::string name;
  int registers = 0;
  int localBytes = 0; ///< Per thread: spills and stack arrays.
};
/// Every kernel the loaded modules have looked up, in lookup order.
std::vector<KernelInfo> kernels();

} // namespace reformer::runtime::cuda

#endif // REFORMER_RUNTIME_CUDA_H
