//===- DeviceResidencyTest.cpp - Device copies kept between calls ---------===//
//
// ResidentTensors over a "device" in host memory: what a training loop's
// calls would move, step by step, and that values survive the round trips.
//
//===----------------------------------------------------------------------===//

#include "reformer/Runtime/DeviceResidency.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

using namespace reformer::runtime;

namespace {

struct HostDeviceMemory final : DeviceMemory {
  std::set<void *> live;
  void *allocate(size_t bytes) override {
    void *p = std::malloc(bytes);
    live.insert(p);
    return p;
  }
  void release(void *pointer) override {
    live.erase(pointer);
    std::free(pointer);
  }
  Status toDevice(void *device, const void *host, size_t bytes) override {
    std::memcpy(device, host, bytes);
    return Status::ok();
  }
  Status toHost(void *host, const void *device, size_t bytes) override {
    std::memcpy(host, device, bytes);
    return Status::ok();
  }
};

Tensor filled(const std::string &name, float value) {
  Tensor t({name, DType::F32, {4}});
  for (int i = 0; i < 4; ++i)
    t.as<float>()[i] = value;
  return t;
}

constexpr size_t kBytes = 4 * sizeof(float);

TEST(DeviceResidency, ReadsCopyInOnlyWhenTheDeviceCopyIsStale) {
  HostDeviceMemory memory;
  ResidentTensors resident(memory);
  Tensor weight = filled("w", 1.0f);
  ASSERT_TRUE(resident.add(weight));
  EXPECT_EQ(resident.bytesToDevice(), 0u); // filled at the first read
  void *device = nullptr;
  ASSERT_TRUE(resident.forReading(weight, device));
  EXPECT_EQ(static_cast<float *>(device)[3], 1.0f);
  ASSERT_TRUE(resident.forReading(weight, device));
  EXPECT_EQ(resident.bytesToDevice(), kBytes);
  // The host changes the tensor: the next read copies it again.
  weight.as<float>()[3] = 5.0f;
  resident.hostChanged(weight);
  ASSERT_TRUE(resident.forReading(weight, device));
  EXPECT_EQ(static_cast<float *>(device)[3], 5.0f);
  EXPECT_EQ(resident.bytesToDevice(), 2 * kBytes);
}

TEST(DeviceResidency, WritesStayOnTheDeviceUntilTheHostAsks) {
  HostDeviceMemory memory;
  ResidentTensors resident(memory);
  Tensor out = filled("out", 0.0f);
  ASSERT_TRUE(resident.add(out));
  auto *device = static_cast<float *>(resident.forWriting(out));
  ASSERT_NE(device, nullptr);
  device[0] = 7.0f; // what a kernel writes
  EXPECT_EQ(out.as<float>()[0], 0.0f);
  EXPECT_EQ(resident.bytesToHost(), 0u);
  ASSERT_TRUE(resident.toHost(out));
  EXPECT_EQ(out.as<float>()[0], 7.0f);
  ASSERT_TRUE(resident.toHost(out)); // already current: no copy
  EXPECT_EQ(resident.bytesToHost(), kBytes);
  // Read again by the next call: the device copy is current.
  void *again = nullptr;
  ASSERT_TRUE(resident.forReading(out, again));
  EXPECT_EQ(again, device);
  EXPECT_EQ(resident.bytesToDevice(), 0u);
}

// A training loop: each step reads the state and writes the next state,
// then swaps them. The copies follow the data, so after the first step
// nothing moves until the state is saved.
TEST(DeviceResidency, ASwappedStateMovesNoBytesBetweenSteps) {
  HostDeviceMemory memory;
  ResidentTensors resident(memory);
  Tensor state = filled("p", 1.0f), next = filled("p", 0.0f);
  ASSERT_TRUE(resident.add(state));
  ASSERT_TRUE(resident.add(next));
  for (int step = 0; step < 3; ++step) {
    void *in = nullptr;
    ASSERT_TRUE(resident.forReading(state, in));
    auto *out = static_cast<float *>(resident.forWriting(next));
    for (int i = 0; i < 4; ++i) // the step: p <- p + 1
      out[i] = static_cast<float *>(in)[i] + 1.0f;
    std::swap(state, next);
  }
  EXPECT_EQ(resident.bytesToDevice(), kBytes); // the first read only
  EXPECT_EQ(resident.bytesToHost(), 0u);
  ASSERT_TRUE(resident.toHost(state));
  EXPECT_EQ(state.as<float>()[2], 4.0f);
  EXPECT_EQ(resident.bytesToHost(), kBytes);
}

TEST(DeviceResidency, OthersAreNotResidentAndClearReleases) {
  HostDeviceMemory memory;
  {
    ResidentTensors resident(memory);
    Tensor kept = filled("kept", 1.0f), other = filled("other", 2.0f);
    ASSERT_TRUE(resident.add(kept));
    EXPECT_TRUE(resident.contains(kept));
    EXPECT_FALSE(resident.contains(other));
    EXPECT_EQ(resident.forWriting(other), nullptr);
    void *device = nullptr;
    Status s = resident.forReading(other, device);
    EXPECT_FALSE(s);
    EXPECT_EQ(s.error, "'other' is not resident");
    EXPECT_EQ(memory.live.size(), 1u);
    resident.clear();
    EXPECT_TRUE(memory.live.empty());
    ASSERT_TRUE(resident.add(kept));
  }
  EXPECT_TRUE(memory.live.empty()); // the destructor releases too
}

} // namespace
