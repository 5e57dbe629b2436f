//===- DeviceResidency.cpp - Device copies that outlive a call ------------===//

#include "reformer/Runtime/DeviceResidency.h"

#include "reformer/Runtime/Cuda.h"

namespace reformer::runtime {

namespace {
struct CudaDeviceMemory final : DeviceMemory {
  void *allocate(size_t bytes) override { return cuda::allocate(bytes); }
  void release(void *pointer) override { cuda::release(pointer); }
  Status toDevice(void *device, const void *host, size_t bytes) override {
    return cuda::copyToDevice(device, host, bytes);
  }
  Status toHost(void *host, const void *device, size_t bytes) override {
    return cuda::copyToHost(host, device, bytes);
  }
};
} // namespace

DeviceMemory &cudaDeviceMemory() {
  static CudaDeviceMemory memory;
  return memory;
}

ResidentTensors::Copy *ResidentTensors::find(const Tensor &tensor) {
  auto it = copies_.find(tensor.data());
  return it == copies_.end() ? nullptr : &it->second;
}

bool ResidentTensors::contains(const Tensor &tensor) const {
  return copies_.count(tensor.data()) != 0;
}

Status ResidentTensors::add(const Tensor &tensor) {
  if (contains(tensor))
    return Status::ok();
  Copy copy;
  copy.bytes = tensor.spec().numBytes();
  copy.device = memory_.allocate(copy.bytes);
  if (!copy.device)
    return Status::fail("no device memory for '" + tensor.spec().name + "' (" +
                        std::to_string(copy.bytes) + " bytes)");
  copies_[tensor.data()] = copy;
  return Status::ok();
}

Status ResidentTensors::forReading(const Tensor &tensor, void *&device) {
  Copy *copy = find(tensor);
  if (!copy)
    return Status::fail("'" + tensor.spec().name + "' is not resident");
  if (!copy->deviceCurrent) {
    if (Status s = memory_.toDevice(copy->device, tensor.data(), copy->bytes);
        !s)
      return s;
    bytesToDevice_ += copy->bytes;
    copy->deviceCurrent = true;
  }
  device = copy->device;
  return Status::ok();
}

void *ResidentTensors::forWriting(const Tensor &tensor) {
  Copy *copy = find(tensor);
  if (!copy)
    return nullptr;
  copy->deviceCurrent = true;
  copy->hostCurrent = false;
  return copy->device;
}

Status ResidentTensors::toHost(const Tensor &tensor) {
  Copy *copy = find(tensor);
  if (!copy || copy->hostCurrent)
    return Status::ok();
  // The host buffer is only a cache of the tensor's value here.
  void *host = const_cast<void *>(tensor.data());
  if (Status s = memory_.toHost(host, copy->device, copy->bytes); !s)
    return s;
  bytesToHost_ += copy->bytes;
  copy->hostCurrent = true;
  return Status::ok();
}

void ResidentTensors::hostChanged(const Tensor &tensor) {
  if (Copy *copy = find(tensor)) {
    copy->deviceCurrent = false;
    copy->hostCurrent = true;
  }
}

void ResidentTensors::clear() {
  for (auto &[host, copy] : copies_)
    memory_.release(copy.device);
  copies_.clear();
}

} // namespace reformer::runtime
