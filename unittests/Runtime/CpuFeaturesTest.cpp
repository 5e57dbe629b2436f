//===- CpuFeaturesTest.cpp - The runtime's check of compiled CPU features -===//

#include "reformer/Runtime/Module.h"

#include "gtest/gtest.h"

using namespace reformer::runtime;

namespace {

/// A CPU with AVX2 and FMA but no AVX-512.
bool avx2Machine(const std::string &feature) {
  return feature == "avx" || feature == "avx2" || feature == "fma";
}

TEST(CpuFeatures, ListsWhatTheCpuLacks) {
  EXPECT_EQ(missingCpuFeatures("avx,avx2,fma,avx512f,avx512bw", avx2Machine),
            (std::vector<std::string>{"avx512f", "avx512bw"}));
  EXPECT_TRUE(missingCpuFeatures("avx,avx2,fma", avx2Machine).empty());
  EXPECT_TRUE(missingCpuFeatures("", avx2Machine).empty());
}

TEST(CpuFeatures, UnknownNamesCountAsMissing) {
  EXPECT_EQ(missingCpuFeatures("avx2,warp-drive", avx2Machine),
            (std::vector<std::string>{"warp-drive"}));
  EXPECT_FALSE(hostHasCpuFeature("warp-drive"));
}

TEST(CpuFeatures, HostHasTheBaseline) {
  // Every x86-64 machine that runs these tests has SSE4.2 (x86-64-v2).
#if defined(__x86_64__)
  EXPECT_TRUE(hostHasCpuFeature("sse4.2"));
#endif
}

} // namespace
