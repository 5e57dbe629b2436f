//===- DeviceResidency.h - Device copies that outlive a call ----*- C++ -*-===//
//
// A GPU module's call copies every argument to device memory and its
// outputs back. A training loop passes the same parameters and optimizer
// state to every step, so ResidentTensors keeps their device copies between
// calls and moves bytes only when a side is stale: the host's after a call
// wrote the device copy, the device's after the host changed the tensor.
// Copies are found by the tensor's host buffer, so they follow a tensor's
// data when tensors are swapped.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_RUNTIME_DEVICERESIDENCY_H
#define REFORMER_RUNTIME_DEVICERESIDENCY_H

#include "reformer/Runtime/Tensor.h"

#include <cstddef>
#include <map>

namespace reformer::runtime {

/// Where device copies live and how bytes move: the CUDA runtime's pool, or
/// host memory in tests.
class DeviceMemory {
public:
  virtual ~DeviceMemory() = default;
  /// Null (with the reason kept by the implementation) when out of memory.
  virtual void *allocate(size_t bytes) = 0;
  virtual void release(void *pointer) = 0;
  virtual Status toDevice(void *device, const void *host, size_t bytes) = 0;
  virtual Status toHost(void *host, const void *device, size_t bytes) = 0;
};

/// The CUDA runtime's device pool and copies.
DeviceMemory &cudaDeviceMemory();

class ResidentTensors {
public:
  explicit ResidentTensors(DeviceMemory &memory = cudaDeviceMemory())
      : memory_(memory) {}
  ~ResidentTensors() { clear(); }
  ResidentTensors(const ResidentTensors &) = delete;
  ResidentTensors &operator=(const ResidentTensors &) = delete;

  /// Keeps a device copy of `tensor` from now on; the host copy is the
  /// current one (the device copy is filled at its first read).
  Status add(const Tensor &tensor);
  bool contains(const Tensor &tensor) const;

  /// The device copy of an argument a call reads, made current first.
  Status forReading(const Tensor &tensor, void *&device);
  /// The device copy of an argument a call writes: afterwards it is the
  /// current one and the host copy is stale.
  void *forWriting(const Tensor &tensor);

  /// Makes `tensor`'s host copy current (copying back if a call wrote it).
  /// The tensor's value does not change, only where it is up to date.
  Status toHost(const Tensor &tensor);
  /// The host changed `tensor`: its device copy is stale.
  void hostChanged(const Tensor &tensor);

  /// Releases every device copy (host copies must be current first).
  void clear();

  size_t bytesToDevice() const { return bytesToDevice_; }
  size_t bytesToHost() const { return bytesToHost_; }

private:
  struct Copy {
    void *device = nullptr;
    size_t bytes = 0;
    bool deviceCurrent = false, hostCurrent = true;
  };
  Copy *find(const Tensor &tensor);

  DeviceMemory &memory_;
  std::map<const void *, Copy> copies_; ///< By host buffer.
  size_t bytesToDevice_ = 0, bytesToHost_ = 0;
};

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_DEVICERESIDENCY_H
