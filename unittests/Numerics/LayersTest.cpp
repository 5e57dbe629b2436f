//===- LayersTest.cpp - Compiled layers vs the reference ------------------===//
//
// fp32 results within 1e-4 of the double-precision reference, relative to
// the largest reference value.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"
#include "Reference.h"

#include "llvm/Support/FormatVariadic.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>

using namespace harness;

namespace {

constexpr double kTolerance = 1e-4;

std::string ffnSource(int64_t chunk, const std::string &act) {
  return llvm::formatv(R"(
    func.func @f(%x: tensor<2x37x16xf32>, %w1: tensor<16x24xf32>, %b1: tensor<24xf32>,
                 %w2: tensor<24x16xf32>, %b2: tensor<16xf32>) -> tensor<2x37x16xf32> {
      %y = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2
          {{chunk = {0} : i64, activation = #reformer.activation<{1}>}
          : (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>, tensor<24x16xf32>,
             tensor<16xf32>) -> tensor<2x37x16xf32>
      return %y : tensor<2x37x16xf32>
    })",
                       chunk, act)
      .str();
}

class ChunkedFfn
    : public ::testing::TestWithParam<std::tuple<int64_t, std::string>> {};

TEST_P(ChunkedFfn, MatchesReference) {
  auto [chunk, act] = GetParam();
  auto compiled = Compiled::fromSource(ffnSource(chunk, act));
  ASSERT_TRUE(compiled);
  std::mt19937 rng(11);
  auto x = randomFloats(rng, 2 * 37 * 16, 1.0);
  auto w1 = randomFloats(rng, 16 * 24, 0.3), b1 = randomFloats(rng, 24, 0.3);
  auto w2 = randomFloats(rng, 24 * 16, 0.3), b2 = randomFloats(rng, 16, 0.3);
  std::vector<float> y(x.size());
  compiled->call(
      "f", {x.data(), w1.data(), b1.data(), w2.data(), b2.data(), y.data()});
  auto expected =
      reference::feedForward(toDouble(x), toDouble(w1), toDouble(b1),
                             toDouble(w2), toDouble(b2), 74, 16, 24, act);
  EXPECT_LE(relativeError(y, expected), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    ChunksAndActivations, ChunkedFfn,
    ::testing::Combine(::testing::Values(1, 7, 74, 128),
                       ::testing::Values("relu", "gelu", "gelu_tanh", "silu")),
    [](const auto &info) {
      return "chunk" + std::to_string(std::get<0>(info.param)) + "_" +
             std::get<1>(info.param);
    });

/// bf16 input and weights with an f32 result (an FFN writing straight into
/// a mixed-precision model's f32 stream): the hidden layer and the sums are
/// f32, so f32's tolerance against the reference fed the rounded values.
TEST(ChunkedFfn, Bf16OperandsIntoF32Result) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x: tensor<2x37x16xbf16>, %w1: tensor<16x24xbf16>, %b1: tensor<24xbf16>,
                 %w2: tensor<24x16xbf16>, %b2: tensor<16xbf16>) -> tensor<2x37x16xf32> {
      %y = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2
          {chunk = 7 : i64, activation = #reformer.activation<gelu>}
          : (tensor<2x37x16xbf16>, tensor<16x24xbf16>, tensor<24xbf16>, tensor<24x16xbf16>,
             tensor<16xbf16>) -> tensor<2x37x16xf32>
      return %y : tensor<2x37x16xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(11);
  std::vector<std::vector<float>> values = {
      randomFloats(rng, 2 * 37 * 16, 1.0), randomFloats(rng, 16 * 24, 0.3),
      randomFloats(rng, 24, 0.3), randomFloats(rng, 24 * 16, 0.3),
      randomFloats(rng, 16, 0.3)};
  std::vector<std::vector<uint16_t>> halves(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    for (float &f : values[i]) {
      halves[i].push_back(toBf16(f));
      f = fromBf16(halves[i].back());
    }
  std::vector<float> y(values[0].size());
  compiled->call("f", {halves[0].data(), halves[1].data(), halves[2].data(),
                       halves[3].data(), halves[4].data(), y.data()});
  auto expected = reference::feedForward(
      toDouble(values[0]), toDouble(values[1]), toDouble(values[2]),
      toDouble(values[3]), toDouble(values[4]), 74, 16, 24, "gelu");
  EXPECT_LE(relativeError(y, expected), kTolerance);
}

/// Chunking changes nothing but rounding: 7-row chunks (with a remainder)
/// against one chunk holding every row.
TEST(ChunkedFfn, ChunkedEqualsUnchunked) {
  auto chunked = Compiled::fromSource(ffnSource(7, "gelu"));
  auto whole = Compiled::fromSource(ffnSource(74, "gelu"));
  ASSERT_TRUE(chunked && whole);
  std::mt19937 rng(5);
  auto x = randomFloats(rng, 2 * 37 * 16, 1.0);
  auto w1 = randomFloats(rng, 16 * 24, 0.3), b1 = randomFloats(rng, 24, 0.3);
  auto w2 = randomFloats(rng, 24 * 16, 0.3), b2 = randomFloats(rng, 16, 0.3);
  std::vector<float> a(x.size()), b(x.size());
  chunked->call(
      "f", {x.data(), w1.data(), b1.data(), w2.data(), b2.data(), a.data()});
  whole->call("f",
              {x.data(), w1.data(), b1.data(), w2.data(), b2.data(), b.data()});
  EXPECT_LE(relativeError(a, toDouble(b)), 1e-6);
}

TEST(LayerNorm, MatchesReference) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x: tensor<3x5x32xf32>, %g: tensor<32xf32>, %b: tensor<32xf32>) -> tensor<3x5x32xf32> {
      %y = reformer.layer_norm %x, %g, %b {epsilon = 1.0e-5 : f64}
          : (tensor<3x5x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<3x5x32xf32>
      return %y : tensor<3x5x32xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(2);
  auto x = randomFloats(rng, 3 * 5 * 32, 2.0);
  for (float &e : x)
    e += 3.0f; // a non-zero mean
  auto g = randomFloats(rng, 32, 1.0), b = randomFloats(rng, 32, 1.0);
  std::vector<float> y(x.size());
  compiled->call("f", {x.data(), g.data(), b.data(), y.data()});
  auto expected =
      reference::layerNorm(toDouble(x), toDouble(g), toDouble(b), 15, 32, 1e-5);
  EXPECT_LE(relativeError(y, expected), kTolerance);
}

TEST(Dense, MatchesReferenceWithAndWithoutBias) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x: tensor<2x9x16xf32>, %w: tensor<16x12xf32>, %b: tensor<12xf32>)
        -> (tensor<2x9x12xf32>, tensor<2x9x12xf32>) {
      %y = reformer.dense %x, %w, %b : (tensor<2x9x16xf32>, tensor<16x12xf32>, tensor<12xf32>) -> tensor<2x9x12xf32>
      %z = reformer.dense %x, %w : (tensor<2x9x16xf32>, tensor<16x12xf32>) -> tensor<2x9x12xf32>
      return %y, %z : tensor<2x9x12xf32>, tensor<2x9x12xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(3);
  auto x = randomFloats(rng, 2 * 9 * 16, 1.0);
  auto w = randomFloats(rng, 16 * 12, 1.0), b = randomFloats(rng, 12, 1.0);
  std::vector<float> y(2 * 9 * 12), z(y.size());
  compiled->call("f", {x.data(), w.data(), b.data(), y.data(), z.data()});
  auto bias = toDouble(b);
  EXPECT_LE(relativeError(y, reference::dense(toDouble(x), toDouble(w), &bias,
                                              18, 16, 12)),
            kTolerance);
  EXPECT_LE(relativeError(z, reference::dense(toDouble(x), toDouble(w), nullptr,
                                              18, 16, 12)),
            kTolerance);
}

/// bf16 storage, f32 compute: within bf16 rounding (2^-8 relative).
TEST(Dense, Bf16WithinItsRounding) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x: tensor<4x32xbf16>, %w: tensor<32x8xbf16>) -> tensor<4x8xbf16> {
      %y = reformer.dense %x, %w : (tensor<4x32xbf16>, tensor<32x8xbf16>) -> tensor<4x8xbf16>
      return %y : tensor<4x8xbf16>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(4);
  auto xf = randomFloats(rng, 4 * 32, 1.0), wf = randomFloats(rng, 32 * 8, 1.0);
  std::vector<uint16_t> x, w, y(4 * 8);
  for (float f : xf)
    x.push_back(toBf16(f));
  for (float f : wf)
    w.push_back(toBf16(f));
  compiled->call("f", {x.data(), w.data(), y.data()});
  std::vector<double> xd, wd;
  for (uint16_t h : x)
    xd.push_back(fromBf16(h));
  for (uint16_t h : w)
    wd.push_back(fromBf16(h));
  std::vector<float> yf;
  for (uint16_t h : y)
    yf.push_back(fromBf16(h));
  EXPECT_LE(relativeError(yf, reference::dense(xd, wd, nullptr, 4, 32, 8)),
            1e-2);
}

TEST(EmbeddingAndAxialPositions, MatchReference) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%t: tensor<2x12xi32>, %e: tensor<50x16xf32>, %a0: tensor<4x6xf32>,
                 %a1: tensor<3x10xf32>) -> tensor<2x12x16xf32> {
      %x = reformer.embedding %t, %e : (tensor<2x12xi32>, tensor<50x16xf32>) -> tensor<2x12x16xf32>
      %y = reformer.axial_pos_embedding %x, %a0, %a1
          : (tensor<2x12x16xf32>, tensor<4x6xf32>, tensor<3x10xf32>) -> tensor<2x12x16xf32>
      return %y : tensor<2x12x16xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(6);
  std::vector<int32_t> tokens(24);
  for (int32_t &t : tokens)
    t = rng() % 50;
  auto e = randomFloats(rng, 50 * 16, 1.0);
  auto a0 = randomFloats(rng, 24, 1.0), a1 = randomFloats(rng, 30, 1.0);
  std::vector<float> y(2 * 12 * 16);
  compiled->call("f",
                 {tokens.data(), e.data(), a0.data(), a1.data(), y.data()});
  // Position p = 3·p0 + p1 gets [a0[p0] ; a1[p1]].
  std::vector<double> expected(y.size());
  for (int b = 0; b < 2; ++b)
    for (int p = 0; p < 12; ++p)
      for (int m = 0; m < 16; ++m) {
        double pos = m < 6 ? a0[(p / 3) * 6 + m] : a1[(p % 3) * 10 + m - 6];
        expected[(b * 12 + p) * 16 + m] = e[tokens[b * 12 + p] * 16 + m] + pos;
      }
  EXPECT_LE(relativeError(y, expected), kTolerance);
}

TEST(SoftmaxCrossEntropy, MatchesReferenceWithAndWithoutWeights) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%l: tensor<2x6x20xf32>, %t: tensor<2x6xi32>, %w: tensor<2x6xf32>)
        -> (tensor<f32>, tensor<f32>) {
      %a = reformer.softmax_cross_entropy %l, %t : (tensor<2x6x20xf32>, tensor<2x6xi32>) -> tensor<f32>
      %b = reformer.softmax_cross_entropy %l, %t weights(%w)
          : (tensor<2x6x20xf32>, tensor<2x6xi32>, tensor<2x6xf32>) -> tensor<f32>
      return %a, %b : tensor<f32>, tensor<f32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(8);
  auto logits = randomFloats(rng, 2 * 6 * 20, 3.0);
  std::vector<int32_t> targets(12);
  for (int32_t &t : targets)
    t = rng() % 20;
  // Loss on the second half of each sequence only (as in the paper's
  // duplication task).
  std::vector<float> weights(12);
  for (int i = 0; i < 12; ++i)
    weights[i] = (i % 6) >= 3;
  float all = 0, half = 0;
  compiled->call("f",
                 {logits.data(), targets.data(), weights.data(), &all, &half});
  std::vector<int64_t> t64(targets.begin(), targets.end());
  EXPECT_NEAR(all, reference::crossEntropy(toDouble(logits), t64, 20),
              1e-4 * std::abs(all));
  std::vector<double> secondHalf;
  std::vector<int64_t> secondTargets;
  for (int i = 0; i < 12; ++i)
    if (weights[i]) {
      secondHalf.insert(secondHalf.end(), logits.begin() + i * 20,
                        logits.begin() + (i + 1) * 20);
      secondTargets.push_back(targets[i]);
    }
  EXPECT_NEAR(half, reference::crossEntropy(secondHalf, secondTargets, 20),
              1e-4 * std::abs(half));
}

struct LocalCase {
  int64_t chunk, before, after;
  bool causal;
  int64_t validLen;
  std::string name;
  int64_t dim = 8;
};

std::ostream &operator<<(std::ostream &os, const LocalCase &c) {
  return os << c.name;
}

/// local_attention for case `c` (CPU pipeline, or the bf16 GPU pipeline
/// with its fused kernel emulated on the CPU) against the reference;
/// returns the outputs' relative error.
double localAttentionError(const LocalCase &c, bool gpuKernel,
                           bool bf16 = false) {
  int64_t B = 2, H = 2, L = 48, D = c.dim;
  std::string t4 = tensorType({B, H, L, D}, bf16 ? "bf16" : "f32"),
              tm = tensorType({B, L}, "i1");
  std::string source = llvm::formatv(R"(
    func.func @f(%q: {0}, %k: {0}, %v: {0}, %m: {1}) -> {0} {
      %o = reformer.local_attention %q, %k, %v mask(%m) {{chunk_len = {2} : i64,
          chunks_before = {3} : i64, chunks_after = {4} : i64{5}}
          : ({0}, {0}, {0}, {1}) -> {0}
      return %o : {0}
    })",
                                     t4, tm, c.chunk, c.before, c.after,
                                     c.causal ? ", causal" : "");
  auto compiled = compileSource(source, gpuKernel);
  if (!compiled)
    return -1;
  std::mt19937 rng(9);
  auto q = randomFloats(rng, B * H * L * D, 1.0);
  auto k = randomFloats(rng, q.size(), 1.0),
       v = randomFloats(rng, q.size(), 1.0);
  std::vector<uint8_t> mask(B * L);
  std::vector<bool> keyMask(L);
  for (int64_t i = 0; i < L; ++i) {
    keyMask[i] = i < c.validLen;
    mask[i] = mask[L + i] = keyMask[i];
  }
  std::vector<float> out(q.size());
  if (bf16) {
    // bf16 in and out: the reference sees the rounded inputs.
    std::vector<uint16_t> qh, kh, vh, oh(q.size());
    for (auto [x, h] : {std::pair{&q, &qh}, {&k, &kh}, {&v, &vh}})
      for (float &f : *x) {
        h->push_back(toBf16(f));
        f = fromBf16(h->back());
      }
    compiled->call("f",
                   {qh.data(), kh.data(), vh.data(), mask.data(), oh.data()});
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = fromBf16(oh[i]);
  } else {
    compiled->call("f",
                   {q.data(), k.data(), v.data(), mask.data(), out.data()});
  }
  std::vector<double> expected(out.size());
  for (int64_t bh = 0; bh < B * H; ++bh) {
    auto slice = [&](const std::vector<float> &t) {
      return std::vector<double>(t.begin() + bh * L * D,
                                 t.begin() + (bh + 1) * L * D);
    };
    std::vector<double> o;
    reference::localAttentionHead(slice(q), slice(k), slice(v), keyMask, L, D,
                                  c.chunk, c.before, c.after, c.causal, o);
    std::copy(o.begin(), o.end(), expected.begin() + bh * L * D);
  }
  return relativeError(out, expected);
}

class LocalAttention : public ::testing::TestWithParam<LocalCase> {};

TEST_P(LocalAttention, MatchesReference) {
  EXPECT_LE(localAttentionError(GetParam(), /*gpuKernel=*/false), kTolerance);
}

/// bf16 queries, keys, values and output, f32 arithmetic: within the
/// output's rounding (2^-8 relative, truncated).
class LocalAttentionBf16 : public ::testing::TestWithParam<LocalCase> {};

TEST_P(LocalAttentionBf16, MatchesReference) {
  EXPECT_LE(localAttentionError(GetParam(), /*gpuKernel=*/false,
                                /*bf16=*/true),
            4e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Grid, LocalAttentionBf16,
    ::testing::Values(LocalCase{16, 1, 0, true, 48, "scalar"},
                      LocalCase{8, 1, 0, true, 40, "vector16", 16},
                      LocalCase{16, 1, 1, false, 48, "vector32", 32}),
    [](const auto &info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    Grid, LocalAttention,
    ::testing::Values(LocalCase{16, 1, 0, true, 48, "causal"},
                      LocalCase{16, 1, 0, false, 48, "bidirectional"},
                      LocalCase{8, 2, 1, false, 48, "before2_after1"},
                      LocalCase{8, 0, 0, true, 48, "own_chunk"},
                      LocalCase{16, 1, 1, true, 40, "padding"}),
    [](const auto &info) { return info.param.name; });

/// The fused tensor-core kernel (bf16 operands, f32 accumulation) as the
/// GPU pipeline emits it, run as a CPU emulation of its blocks: within
/// 1e-2, and above 1e-5 (the bf16 kernel ran). The first chunk's look-back
/// and the last chunk's look-ahead have no keys.
class LocalAttentionGpuKernel : public ::testing::TestWithParam<LocalCase> {};

TEST_P(LocalAttentionGpuKernel, MatchesReference) {
  double error = localAttentionError(GetParam(), /*gpuKernel=*/true);
  EXPECT_LE(error, 1e-2);
  EXPECT_GT(error, 1e-5) << "no bf16 rounding: the fused kernel did not run";
}

INSTANTIATE_TEST_SUITE_P(
    Grid, LocalAttentionGpuKernel,
    ::testing::Values(LocalCase{16, 1, 0, true, 48, "causal", 16},
                      LocalCase{16, 1, 1, false, 48, "bidirectional", 32},
                      LocalCase{16, 2, 1, true, 40, "padding_before2", 16},
                      LocalCase{48, 1, 0, true, 48, "one_chunk", 16}),
    [](const auto &info) { return info.param.name; });

} // namespace
