//===- Cuda.cpp - The CUDA side of the runtime ----------------------------===//
//
// The driver API is declared here, not taken from cuda.h: the runtime
// builds and runs without the CUDA toolkit, and resolves the few driver
// functions it needs from libcuda.so.1 at first use.
//
//===----------------------------------------------------------------------===//

#include "reformer/Runtime/Cuda.h"

#include <algorithm>
#include <cstdint>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <type_traits>

namespace reformer::runtime::cuda {
namespace {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctxOpaque *;
using CUmodule = struct CUmodOpaque *;
using CUfunction = struct CUfuncOpaque *;
using CUstream = struct CUstreamOpaque *;

// Values from the driver API's headers (stable across CUDA versions).
constexpr int kFuncLocalSizeBytes = 3;
constexpr int kFuncNumRegs = 4;
constexpr int kJitErrorLogBuffer = 5;
constexpr int kJitErrorLogBufferSizeBytes = 6;

struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *,
                                 void **);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuFuncGetAttribute)(int *, int, CUfunction);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuGetErrorName)(CUresult, const char **);
};

struct State {
  std::recursive_mutex mutex;
  bool tried = false;
  Status ready = Status::fail("the CUDA runtime is not initialized");
  Driver driver{};
  CUstream stream = nullptr;
  std::string device;
  /// The first error since the last synchronize(); GPU work is skipped
  /// while it is set.
  std::string error;
  std::multimap<size_t, void *> freeBlocks;
  std::map<void *, size_t> blockSizes;
  size_t held = 0, peak = 0;
  std::vector<KernelInfo> kernels;
  std::map<CUfunction, std::string> kernelNames;
};

State &state() {
  static State s;
  return s;
}

void record(State &s, const std::string &message) {
  if (s.error.empty())
    s.error = message;
}

std::string errorName(State &s, CUresult result) {
  const char *name = nullptr;
  if (s.driver.cuGetErrorName && s.driver.cuGetErrorName(result, &name) == 0 &&
      name)
    return name;
  return "CUDA error " + std::to_string(result);
}

/// Records `what` failing with `result`; true on success.
bool check(State &s, CUresult result, const std::string &what) {
  if (result == 0)
    return true;
  record(s, what + ": " + errorName(s, result));
  return false;
}

Status load(State &s) {
  void *library = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library)
    return Status::fail(std::string("no CUDA driver (") + ::dlerror() + ")");
  std::string missing;
  auto resolve = [&](auto &slot, const char *name) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(
        ::dlsym(library, name));
    if (!slot)
      missing += std::string(missing.empty() ? "" : ", ") + name;
  };
  Driver &d = s.driver;
  resolve(d.cuInit, "cuInit");
  resolve(d.cuDeviceGetCount, "cuDeviceGetCount");
  resolve(d.cuDeviceGet, "cuDeviceGet");
  resolve(d.cuDeviceGetName, "cuDeviceGetName");
  resolve(d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  resolve(d.cuCtxSetCurrent, "cuCtxSetCurrent");
  resolve(d.cuModuleLoadDataEx, "cuModuleLoadDataEx");
  resolve(d.cuModuleUnload, "cuModuleUnload");
  resolve(d.cuModuleGetFunction, "cuModuleGetFunction");
  resolve(d.cuFuncGetAttribute, "cuFuncGetAttribute");
  resolve(d.cuLaunchKernel, "cuLaunchKernel");
  resolve(d.cuStreamCreate, "cuStreamCreate");
  resolve(d.cuStreamSynchronize, "cuStreamSynchronize");
  resolve(d.cuMemAlloc, "cuMemAlloc_v2");
  resolve(d.cuMemFree, "cuMemFree_v2");
  resolve(d.cuMemcpyHtoD, "cuMemcpyHtoD_v2");
  resolve(d.cuMemcpyDtoH, "cuMemcpyDtoH_v2");
  resolve(d.cuGetErrorName, "cuGetErrorName");
  if (!missing.empty())
    return Status::fail("the CUDA driver lacks " + missing);
  if (CUresult r = d.cuInit(0))
    return Status::fail("no CUDA GPU (cuInit: " + errorName(s, r) + ")");
  int count = 0;
  if (CUresult r = d.cuDeviceGetCount(&count); r || count == 0)
    return Status::fail("no CUDA GPU (the driver sees no device)");
  CUdevice device = 0;
  CUcontext context = nullptr;
  char name[256] = {0};
  if (CUresult r = d.cuDeviceGet(&device, 0))
    return Status::fail("cuDeviceGet: " + errorName(s, r));
  d.cuDeviceGetName(name, sizeof(name) - 1, device);
  s.device = name;
  if (CUresult r = d.cuDevicePrimaryCtxRetain(&context, device))
    return Status::fail("cuDevicePrimaryCtxRetain: " + errorName(s, r));
  if (CUresult r = d.cuCtxSetCurrent(context))
    return Status::fail("cuCtxSetCurrent: " + errorName(s, r));
  if (CUresult r = d.cuStreamCreate(&s.stream, 0))
    return Status::fail("cuStreamCreate: " + errorName(s, r));
  return Status::ok();
}

} // namespace

Status initialize() {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!s.tried) {
    s.tried = true;
    s.ready = load(s);
  }
  return s.ready;
}

std::string deviceName() { return state().device; }

void *allocate(size_t bytes) {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!initialize()) {
    record(s, s.ready.error);
    return nullptr;
  }
  // Whole 256-byte lines: what cuMemAlloc aligns to, and fewer sizes.
  bytes = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  if (auto it = s.freeBlocks.find(bytes); it != s.freeBlocks.end()) {
    void *block = it->second;
    s.freeBlocks.erase(it);
    s.held += bytes;
    s.peak = std::max(s.peak, s.held);
    return block;
  }
  CUdeviceptr pointer = 0;
  CUresult result = s.driver.cuMemAlloc(&pointer, bytes);
  if (result != 0 && !s.freeBlocks.empty()) {
    // Out of memory with blocks cached for other sizes: give them back,
    // once the kernels queued before their release are done with them.
    s.driver.cuStreamSynchronize(s.stream);
    for (auto &[size, block] : s.freeBlocks) {
      s.driver.cuMemFree(reinterpret_cast<CUdeviceptr>(block));
      s.blockSizes.erase(block);
    }
    s.freeBlocks.clear();
    result = s.driver.cuMemAlloc(&pointer, bytes);
  }
  if (!check(s, result,
             "allocating " + std::to_string(bytes) + " bytes of device memory"))
    return nullptr;
  void *block = reinterpret_cast<void *>(pointer);
  s.blockSizes[block] = bytes;
  s.held += bytes;
  s.peak = std::max(s.peak, s.held);
  return block;
}

void release(void *pointer) {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  auto it = s.blockSizes.find(pointer);
  if (!pointer || it == s.blockSizes.end())
    return;
  // One stream runs everything in order: a later kernel may reuse the
  // block without waiting for earlier ones.
  s.freeBlocks.emplace(it->second, pointer);
  s.held -= it->second;
}

namespace {
/// Waits for queued work, then runs `copy` (a synchronous driver copy);
/// returns its error, if any, and clears it.
template <typename Copy>
Status synchronizedCopy(const std::string &what, Copy copy) {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (Status ready = initialize(); !ready)
    return ready;
  if (check(s, s.driver.cuStreamSynchronize(s.stream), "cuStreamSynchronize") &&
      check(s, copy(s.driver), what))
    return Status::ok();
  Status failed = Status::fail(s.error);
  s.error.clear();
  return failed;
}
} // namespace

Status copyToDevice(void *device, const void *host, size_t bytes) {
  return synchronizedCopy("copying to the device", [&](Driver &d) {
    return d.cuMemcpyHtoD(reinterpret_cast<CUdeviceptr>(device), host, bytes);
  });
}

Status copyToHost(void *host, const void *device, size_t bytes) {
  return synchronizedCopy("copying to the host", [&](Driver &d) {
    return d.cuMemcpyDtoH(host, reinterpret_cast<CUdeviceptr>(device), bytes);
  });
}

Status synchronize() {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (Status ready = initialize(); !ready)
    return ready;
  check(s, s.driver.cuStreamSynchronize(s.stream),
        "waiting for the GPU (an earlier kernel failed)");
  Status result = s.error.empty() ? Status::ok() : Status::fail(s.error);
  s.error.clear();
  return result;
}

size_t peakPoolBytes() { return state().peak; }

std::vector<KernelInfo> kernels() {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  return s.kernels;
}

} // namespace reformer::runtime::cuda

using namespace reformer::runtime::cuda;
using reformer::runtime::Status;

// The functions MLIR's gpu-to-llvm host code calls, and the allocator its
// memref lowering calls (with use-generic-functions).
extern "C" {

void *mgpuModuleLoad(void *data, int64_t /*size*/) {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (Status ready = initialize(); !ready) {
    record(s, ready.error);
    return nullptr;
  }
  char log[8192] = {0};
  int options[] = {kJitErrorLogBuffer, kJitErrorLogBufferSizeBytes};
  void *values[] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log)))};
  CUmodule module = nullptr;
  if (CUresult r =
          s.driver.cuModuleLoadDataEx(&module, data, 2, options, values)) {
    record(s, "loading a kernel module failed: " + errorName(s, r) +
                  (log[0] ? std::string(": ") + log : std::string()));
    return nullptr;
  }
  return module;
}

void mgpuModuleUnload(void *module) {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (module && s.ready)
    s.driver.cuModuleUnload(static_cast<CUmodule>(module));
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!module)
    return nullptr;
  CUfunction function = nullptr;
  if (!check(s,
             s.driver.cuModuleGetFunction(&function,
                                          static_cast<CUmodule>(module), name),
             std::string("looking up kernel '") + name + "'"))
    return nullptr;
  KernelInfo info;
  info.name = name;
  s.driver.cuFuncGetAttribute(&info.registers, kFuncNumRegs, function);
  s.driver.cuFuncGetAttribute(&info.localBytes, kFuncLocalSizeBytes, function);
  s.kernels.push_back(info);
  s.kernelNames[function] = name;
  return function;
}

void mgpuLaunchKernel(void *function, int64_t gridX, int64_t gridY,
                      int64_t gridZ, int64_t blockX, int64_t blockY,
                      int64_t blockZ, int32_t sharedBytes, void *stream,
                      void **params, void **extra, int64_t /*paramCount*/) {
  State &s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  if (!function || !s.error.empty())
    return; // an earlier error is reported; later work would only add noise
  auto f = static_cast<CUfunction>(function);
  check(s,
        s.driver.cuLaunchKernel(f, gridX, gridY, gridZ, blockX, blockY, blockZ,
                                sharedBytes, static_cast<CUstream>(stream),
                                params, extra),
        "launching kernel '" + s.kernelNames[f] + "' (grid " +
            std::to_string(gridX) + "x" + std::to_string(gridY) + "x" +
            std::to_string(gridZ) + ", block " + std::to_string(blockX) + "x" +
            std::to_string(blockY) + "x" + std::to_string(blockZ) + ")");
}

// One stream for all work: the generated code creates and synchronizes a
// stream per launch, which would serialize the host with every kernel.
void *mgpuStreamCreate() { return state().stream; }
void mgpuStreamSynchronize(void *) {}
void mgpuStreamDestroy(void *) {}

void *_mlir_memref_to_llvm_alloc(size_t bytes) { return allocate(bytes); }
void *_mlir_memref_to_llvm_aligned_alloc(size_t /*alignment*/, size_t bytes) {
  return allocate(bytes); // device blocks are 256-byte aligned
}
void _mlir_memref_to_llvm_free(void *pointer) { release(pointer); }

} // extern "C"
