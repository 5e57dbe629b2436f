//===- CudaRuntimeTest.cpp - The CUDA side of the runtime -----------------===//
//
// Without a GPU: every entry point the generated code calls reports "no
// CUDA driver/GPU" as a kept error and does nothing, instead of crashing.
// With one: device memory round-trips and the pool reuses freed blocks.
//
//===----------------------------------------------------------------------===//

#include "reformer/Runtime/Cuda.h"

#include "gtest/gtest.h"

#include <cstdint>
#include <vector>

extern "C" {
void *mgpuModuleLoad(void *data, int64_t size);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, int64_t gridX, int64_t gridY,
                      int64_t gridZ, int64_t blockX, int64_t blockY,
                      int64_t blockZ, int32_t sharedBytes, void *stream,
                      void **params, void **extra, int64_t paramCount);
void *mgpuStreamCreate();
void mgpuStreamSynchronize(void *stream);
void mgpuStreamDestroy(void *stream);
void mgpuModuleUnload(void *module);
void *_mlir_memref_to_llvm_alloc(size_t bytes);
void _mlir_memref_to_llvm_free(void *pointer);
}

using namespace reformer::runtime;

namespace {

bool haveGpu() { return static_cast<bool>(cuda::initialize()); }

TEST(CudaRuntime, WithoutAGpuEveryCallReportsWhy) {
  if (haveGpu())
    GTEST_SKIP() << "a GPU is present: " << cuda::deviceName();
  Status ready = cuda::initialize();
  EXPECT_TRUE(ready.error.rfind("no CUDA driver", 0) == 0 ||
              ready.error.rfind("no CUDA GPU", 0) == 0)
      << ready.error;

  // What a GPU module's constructors and host code do: all of it is
  // skipped, and the first error is kept for the caller.
  EXPECT_EQ(mgpuModuleLoad(nullptr, 0), nullptr);
  EXPECT_EQ(mgpuModuleGetFunction(nullptr, "kernel"), nullptr);
  void *stream = mgpuStreamCreate();
  void *buffer = _mlir_memref_to_llvm_alloc(1024);
  EXPECT_EQ(buffer, nullptr);
  mgpuLaunchKernel(nullptr, 1, 1, 1, 32, 1, 1, 0, stream, nullptr, nullptr, 0);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
  _mlir_memref_to_llvm_free(buffer);
  mgpuModuleUnload(nullptr);
  EXPECT_TRUE(cuda::kernels().empty());

  Status result = cuda::synchronize();
  EXPECT_FALSE(result);
  EXPECT_EQ(result.error, ready.error);
  float host[4] = {1, 2, 3, 4};
  EXPECT_FALSE(cuda::copyToDevice(nullptr, host, sizeof(host)));
  EXPECT_FALSE(cuda::copyToHost(host, nullptr, sizeof(host)));
}

TEST(CudaRuntime, DeviceMemoryRoundTrips) {
  if (!haveGpu())
    GTEST_SKIP() << cuda::initialize().error;
  std::vector<float> data(1 << 18), back(data.size());
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<float>(i) * 0.5f;
  void *device = cuda::allocate(data.size() * sizeof(float));
  ASSERT_NE(device, nullptr) << cuda::synchronize().error;
  ASSERT_TRUE(cuda::copyToDevice(device, data.data(), data.size() * 4));
  ASSERT_TRUE(cuda::copyToHost(back.data(), device, back.size() * 4));
  EXPECT_EQ(back, data);
  cuda::release(device);
  EXPECT_TRUE(cuda::synchronize());
}

TEST(CudaRuntime, ThePoolReusesFreedBlocks) {
  if (!haveGpu())
    GTEST_SKIP() << cuda::initialize().error;
  void *first = cuda::allocate(3 << 20);
  ASSERT_NE(first, nullptr);
  size_t peak = cuda::peakPoolBytes();
  cuda::release(first);
  // The same size comes back from the pool: no new device memory.
  void *second = cuda::allocate(3 << 20);
  EXPECT_EQ(second, first);
  EXPECT_EQ(cuda::peakPoolBytes(), peak);
  // Two live blocks are distinct.
  void *third = cuda::allocate(3 << 20);
  EXPECT_NE(third, second);
  cuda::release(second);
  cuda::release(third);
  EXPECT_TRUE(cuda::synchronize());
}

} // namespace
