//===- AttentionGradTest.cpp - Attention gradients vs finite differences --===//
//
// The compiled forward (with its training results) feeds the compiled
// gradient op; both gradients are compared with central differences of the
// double-precision reference forward, loss = Σ dy ⊙ out, within 1e-4
// relative to the largest gradient. LSH inputs are redrawn until no bucket
// is within 1e-3 of a tie, so neither f32 rounding nor the finite-difference
// step can move a position to another bucket.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"
#include "Reference.h"

#include "llvm/Support/FormatVariadic.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <functional>

using namespace harness;
using reference::Vec;

namespace {

constexpr double kTolerance = 1e-4;

/// Elements [n·index, n·(index + 1)) of `v`, as doubles.
template <typename T>
Vec slice(const std::vector<T> &v, int64_t index, int64_t n) {
  return Vec(v.begin() + index * n, v.begin() + (index + 1) * n);
}

struct LshGradCase {
  int64_t batch, heads, len, dim;
  reference::LshConfig config;
  int64_t validLen; ///< < len: positions past it are masked padding.
  std::string name;
  /// Inputs are redrawn until every hash's best two candidates differ by
  /// more than this.
  double minMargin = 1e-3;
};

std::ostream &operator<<(std::ostream &os, const LshGradCase &c) {
  return os << c.name;
}

/// Attributes shared by lsh_attention and lsh_attention_grad.
std::string sharedAttrs(const reference::LshConfig &c) {
  std::string buckets;
  for (size_t i = 0; i < c.nBuckets.size(); ++i)
    buckets += (i ? ", " : "") + std::to_string(c.nBuckets[i]);
  std::string s = llvm::formatv(
      "n_buckets = array<i64: {0}>, chunk_len = {1} : i64, chunks_before = "
      "{2} : i64, chunks_after = {3} : i64",
      buckets, c.chunkLen, c.chunksBefore, c.chunksAfter);
  if (c.causal)
    s += ", causal";
  if (c.duplicateCorrection)
    s += ", duplicate_correction";
  return s;
}

/// Compiles lsh_attention and its gradient for case `c` (CPU pipeline, or
/// the bf16 GPU pipeline with its fused kernels emulated on the CPU) and
/// holds both gradients against central differences of the reference
/// within `tolerance`; returns the larger relative error.
double checkLshGrad(const LshGradCase &c, bool gpuKernel, double tolerance) {
  const reference::LshConfig &cfg = c.config;
  int64_t B = c.batch, H = c.heads, L = c.len, D = c.dim, R = cfg.nHashes;
  int64_t K = 0;
  for (int64_t f : cfg.nBuckets)
    K += f / 2;
  std::string t4 = tensorType({B, H, L, D});
  std::string tr = tensorType({H, D, R, K});
  std::string tm = tensorType({B, L}, "i1");
  std::string tl = tensorType({B, H, R, L});
  std::string tb = tensorType({B, H, R, L}, "i32");
  std::string source = llvm::formatv(R"(
    func.func @f(%qk: {0}, %v: {0}, %rot: {1}, %mask: {2}, %dy: {0}) -> ({0}, {0}) {
      %o:3 = reformer.lsh_attention %qk, %v rotations(%rot) mask(%mask)
          {{n_hashes = {5} : i64, {6}} : ({0}, {0}, {1}, {2}) -> ({0}, {3}, {4})
      %g:2 = reformer.lsh_attention_grad %qk, %v, %o#0, %dy lse(%o#1)
          buckets(%o#2) mask(%mask) {{{6}}
          : ({0}, {0}, {0}, {0}, {3}, {4}, {2}) -> ({0}, {0})
      return %g#0, %g#1 : {0}, {0}
    })",
                                     t4, tr, tm, tl, tb, R, sharedAttrs(cfg));
  auto compiled = compileSource(source, gpuKernel);
  if (!compiled)
    return -1;

  std::mt19937 rng(99);
  std::vector<float> qk, rot;
  if (!drawUnambiguousLshInputs(rng, B, H, L, D, R, cfg.nBuckets, c.minMargin,
                                qk, rot)) {
    ADD_FAILURE() << "no unambiguous input found";
    return -1;
  }
  auto v = randomFloats(rng, B * H * L * D, 1.0);
  auto dy = randomFloats(rng, B * H * L * D, 1.0);
  std::vector<uint8_t> mask(B * L);
  std::vector<bool> keyMask(L);
  for (int64_t i = 0; i < L; ++i)
    keyMask[i] = i < c.validLen;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i)
      mask[b * L + i] = keyMask[i];

  std::vector<float> dqk(qk.size()), dv(v.size());
  compiled->call("f", {qk.data(), v.data(), rot.data(), mask.data(), dy.data(),
                       dqk.data(), dv.data()});

  // Heads are independent: differentiate each head's Σ dy ⊙ out.
  Vec expectedQk, expectedV;
  for (int64_t bh = 0; bh < B * H; ++bh) {
    Vec x = slice(qk, bh, L * D), vv = slice(v, bh, L * D);
    Vec hr = slice(rot, bh % H, D * R * K), g = slice(dy, bh, L * D);
    auto loss = [&](const Vec &xv, const Vec &vv2) {
      Vec out;
      reference::lshAttentionHead(xv, vv2, hr, keyMask, L, D, cfg, out);
      return dot(g, out);
    };
    Vec gx = finiteDifferences([&](const Vec &p) { return loss(p, vv); }, x);
    Vec gv = finiteDifferences([&](const Vec &p) { return loss(x, p); }, vv);
    expectedQk.insert(expectedQk.end(), gx.begin(), gx.end());
    expectedV.insert(expectedV.end(), gv.begin(), gv.end());
  }
  double qkError = relativeError(dqk, expectedQk);
  double vError = relativeError(dv, expectedV);
  EXPECT_LE(qkError, tolerance);
  EXPECT_LE(vError, tolerance);
  return std::max(qkError, vError);
}

class LshAttentionGrad : public ::testing::TestWithParam<LshGradCase> {};

TEST_P(LshAttentionGrad, MatchesFiniteDifferences) {
  checkLshGrad(GetParam(), /*gpuKernel=*/false, kTolerance);
}

/// The fused tensor-core kernels (forward and gradient, bf16 operands, f32
/// accumulation) as the GPU pipeline emits them, run as CPU emulations of
/// their blocks: bf16 tolerance, and an error above 1e-5 proves the bf16
/// kernels ran.
class LshAttentionGradGpuKernel : public ::testing::TestWithParam<LshGradCase> {
};

TEST_P(LshAttentionGradGpuKernel, MatchesFiniteDifferences) {
  double error = checkLshGrad(GetParam(), /*gpuKernel=*/true, 2e-2);
  EXPECT_GT(error, 1e-5) << "no bf16 rounding: the fused kernels did not run";
}

reference::LshConfig lsh(int64_t hashes, std::vector<int64_t> buckets,
                         int64_t chunk, int64_t before, int64_t after,
                         bool causal, bool duplicates = false) {
  reference::LshConfig c;
  c.nHashes = hashes;
  c.nBuckets = std::move(buckets);
  c.chunkLen = chunk;
  c.chunksBefore = before;
  c.chunksAfter = after;
  c.causal = causal;
  c.duplicateCorrection = duplicates;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Grid, LshAttentionGrad,
    ::testing::Values(
        LshGradCase{1, 1, 32, 8, lsh(1, {4}, 8, 1, 0, false), 32, "OneRound"},
        LshGradCase{2, 2, 32, 8, lsh(2, {4}, 8, 1, 0, true), 32,
                    "CausalTwoRoundsBatchHeads"},
        LshGradCase{1, 2, 32, 16, lsh(4, {8}, 8, 1, 0, true), 32,
                    "CausalFourRoundsWideHead"},
        LshGradCase{1, 1, 32, 8, lsh(2, {4, 2}, 8, 2, 1, false), 32,
                    "FactorizedLookAroundTwoOne"},
        LshGradCase{1, 1, 32, 8, lsh(2, {4}, 8, 0, 0, true), 32, "NoLookBack"},
        LshGradCase{1, 1, 32, 8, lsh(2, {4}, 8, 1, 0, true, true), 32,
                    "DuplicateCorrection"},
        LshGradCase{2, 1, 32, 8, lsh(2, {4}, 8, 1, 0, true), 27, "PaddingMask"},
        LshGradCase{1, 1, 64, 8, lsh(8, {4}, 16, 1, 0, true), 64,
                    "EightRounds"}),
    [](const ::testing::TestParamInfo<LshGradCase> &info) {
      return info.param.name;
    });

// Shapes the fused kernels take (chunks and head dimensions multiples of
// 16, no duplicate correction): one to four warps of keys, query tiles of
// 16 and 32, look-back and look-ahead, padding, several rounds and batches.
INSTANTIATE_TEST_SUITE_P(
    Grid, LshAttentionGradGpuKernel,
    ::testing::Values(LshGradCase{1, 1, 32, 16, lsh(1, {2}, 16, 1, 0, false),
                                  32, "OneRound", 3e-2},
                      LshGradCase{1, 2, 64, 16, lsh(2, {4}, 16, 1, 0, true), 64,
                                  "CausalTwoRounds", 3e-2},
                      LshGradCase{2, 1, 64, 16, lsh(2, {4}, 16, 1, 1, true), 50,
                                  "PaddingLookAhead", 3e-2},
                      LshGradCase{1, 1, 64, 32, lsh(2, {2}, 32, 1, 0, true), 64,
                                  "TwoWarps", 3e-2},
                      LshGradCase{1, 1, 128, 16, lsh(1, {2}, 64, 1, 0, true),
                                  128, "FourWarpsQueryTile32", 3e-2}),
    [](const ::testing::TestParamInfo<LshGradCase> &info) {
      return info.param.name;
    });

struct LocalGradCase {
  int64_t len, chunk, before, after;
  bool causal;
  int64_t validLen;
  std::string name;
  int64_t dim = 8;
};

std::ostream &operator<<(std::ostream &os, const LocalGradCase &c) {
  return os << c.name;
}

/// How the compiled function receives its queries, keys and values.
struct LocalGradInputs {
  bool bf16 = false; ///< bf16 (mixed precision's activations) or f32.
  /// As [B, L, H·D] rows through reformer.split_heads, as the model feeds
  /// them (the lowering reads the rows through a strided view).
  bool splitHeads = false;
};

/// Compiles local_attention_grad for case `c` (CPU pipeline, or the bf16
/// GPU pipeline with its fused kernels emulated) and holds the three
/// gradients against central differences of the reference within
/// `tolerance`; returns the largest relative error.
double checkLocalGrad(const LocalGradCase &c, bool gpuKernel, double tolerance,
                      LocalGradInputs inputs = {}) {
  int64_t B = 2, H = 2, L = c.len, D = c.dim;
  std::string element = inputs.bf16 ? "bf16" : "f32";
  std::string t4 = tensorType({B, H, L, D});
  std::string ti = tensorType({B, H, L, D}, element);
  std::string targ =
      inputs.splitHeads ? tensorType({B, L, H * D}, element) : ti;
  std::string tm = tensorType({B, L}, "i1");
  std::string attrs = llvm::formatv(
      "chunk_len = {0} : i64, chunks_before = {1} : i64, chunks_after = {2} "
      ": i64{3}",
      c.chunk, c.before, c.after, c.causal ? ", causal" : "");
  std::string split;
  if (inputs.splitHeads)
    for (const char *x : {"q", "k", "v"})
      split +=
          llvm::formatv("%{0}h = reformer.split_heads %{0} : ({1}) -> {2}\n", x,
                        targ, ti)
              .str();
  const char *suffix = inputs.splitHeads ? "h" : "";
  std::string source =
      llvm::formatv(R"(
    func.func @f(%q: {6}, %k: {6}, %v: {6}, %mask: {1}, %dy: {0})
        -> ({0}, {0}, {0}) {
      {7}
      %g:3 = reformer.local_attention_grad %q{8}, %k{8}, %v{8}, %dy {4} {{{2}}
          : ({3}, {3}, {3}, {0}{5}) -> ({0}, {0}, {0})
      return %g#0, %g#1, %g#2 : {0}, {0}, {0}
    })",
                    t4, tm, attrs, ti, c.validLen < L ? "mask(%mask)" : "",
                    c.validLen < L ? ", " + tm : "", targ, split, suffix);
  auto compiled = compileSource(source, gpuKernel);
  if (!compiled)
    return -1;
  std::mt19937 rng(5);
  size_t n = B * H * L * D;
  auto q = randomFloats(rng, n, 1.0), k = randomFloats(rng, n, 1.0),
       v = randomFloats(rng, n, 1.0), dy = randomFloats(rng, n, 1.0);
  std::vector<uint8_t> mask(B * L);
  std::vector<bool> keyMask(L);
  for (int64_t i = 0; i < L; ++i)
    keyMask[i] = i < c.validLen;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i)
      mask[b * L + i] = keyMask[i];
  std::vector<float> dq(n), dk(n), dv(n);
  // bf16 inputs: the reference sees the rounded values.
  std::vector<uint16_t> qh, kh, vh;
  if (inputs.bf16)
    for (auto [x, h] : {std::pair{&q, &qh}, {&k, &kh}, {&v, &vh}})
      for (float &f : *x) {
        h->push_back(toBf16(f));
        f = fromBf16(h->back());
      }
  // [B, H, L, D] → [B, L, H·D] for split_heads.
  auto rows = [&](auto &x) {
    auto out = x;
    if (inputs.splitHeads)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < L; ++i)
            for (int64_t d = 0; d < D; ++d)
              out[((b * L + i) * H + h) * D + d] =
                  x[((b * H + h) * L + i) * D + d];
    return out;
  };
  auto qr = rows(q), kr = rows(k), vr = rows(v);
  auto qhr = rows(qh), khr = rows(kh), vhr = rows(vh);
  if (inputs.bf16)
    compiled->call("f", {qhr.data(), khr.data(), vhr.data(), mask.data(),
                         dy.data(), dq.data(), dk.data(), dv.data()});
  else
    compiled->call("f", {qr.data(), kr.data(), vr.data(), mask.data(),
                         dy.data(), dq.data(), dk.data(), dv.data()});

  Vec eq, ek, ev;
  for (int64_t bh = 0; bh < B * H; ++bh) {
    Vec Q = slice(q, bh, L * D), Kx = slice(k, bh, L * D),
        V = slice(v, bh, L * D), G = slice(dy, bh, L * D);
    auto loss = [&](const Vec &qv, const Vec &kv, const Vec &vv) {
      Vec out;
      reference::localAttentionHead(qv, kv, vv, keyMask, L, D, c.chunk,
                                    c.before, c.after, c.causal, out);
      return dot(G, out);
    };
    Vec gq = finiteDifferences([&](const Vec &p) { return loss(p, Kx, V); }, Q);
    Vec gk = finiteDifferences([&](const Vec &p) { return loss(Q, p, V); }, Kx);
    Vec gv = finiteDifferences([&](const Vec &p) { return loss(Q, Kx, p); }, V);
    eq.insert(eq.end(), gq.begin(), gq.end());
    ek.insert(ek.end(), gk.begin(), gk.end());
    ev.insert(ev.end(), gv.begin(), gv.end());
  }
  double errors[] = {relativeError(dq, eq), relativeError(dk, ek),
                     relativeError(dv, ev)};
  const char *names[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i)
    EXPECT_LE(errors[i], tolerance) << "gradient of " << names[i];
  return *std::max_element(std::begin(errors), std::end(errors));
}

class LocalAttentionGrad : public ::testing::TestWithParam<LocalGradCase> {};

TEST_P(LocalAttentionGrad, MatchesFiniteDifferences) {
  checkLocalGrad(GetParam(), /*gpuKernel=*/false, kTolerance);
}

/// bf16 queries, keys and values (the activations of mixed precision), f32
/// output gradient: the arithmetic is f32, so f32's tolerance.
class LocalAttentionGradBf16Inputs
    : public ::testing::TestWithParam<LocalGradCase> {};

TEST_P(LocalAttentionGradBf16Inputs, MatchesFiniteDifferences) {
  checkLocalGrad(GetParam(), /*gpuKernel=*/false, kTolerance, {true, false});
}

/// The same, with the inputs as the model gives them: split_heads of
/// [B, L, H·D] rows, read through a strided view.
TEST_P(LocalAttentionGradBf16Inputs, ThroughSplitHeadsMatchFiniteDifferences) {
  checkLocalGrad(GetParam(), /*gpuKernel=*/false, kTolerance, {true, true});
}

/// The fused kernels (the forward for the statistics, then the gradient)
/// emulated: bf16 tolerance, and an error above 1e-5 proves they ran.
class LocalAttentionGradGpuKernel
    : public ::testing::TestWithParam<LocalGradCase> {};

TEST_P(LocalAttentionGradGpuKernel, MatchesFiniteDifferences) {
  double error = checkLocalGrad(GetParam(), /*gpuKernel=*/true, 2e-2);
  EXPECT_GT(error, 1e-5) << "no bf16 rounding: the fused kernels did not run";
}

INSTANTIATE_TEST_SUITE_P(
    Grid, LocalAttentionGrad,
    ::testing::Values(LocalGradCase{32, 8, 1, 0, true, 32, "Causal"},
                      LocalGradCase{32, 8, 1, 1, false, 32, "LookAround"},
                      LocalGradCase{32, 8, 2, 0, true, 29, "PaddingMask"}),
    [](const ::testing::TestParamInfo<LocalGradCase> &info) {
      return info.param.name;
    });

// Head dimensions of 8 (scalar rows), 16 and 32 (vector rows).
INSTANTIATE_TEST_SUITE_P(
    Grid, LocalAttentionGradBf16Inputs,
    ::testing::Values(LocalGradCase{32, 8, 2, 0, true, 29, "Scalar"},
                      LocalGradCase{48, 8, 1, 0, true, 40, "Vector16", 16},
                      LocalGradCase{32, 8, 1, 1, false, 32, "Vector32", 32}),
    [](const ::testing::TestParamInfo<LocalGradCase> &info) {
      return info.param.name;
    });

// Shapes the fused kernels take: chunks of 16 and 32 (one and two warps of
// keys), look-back and look-ahead chunks past the sequence's ends,
// padding.
INSTANTIATE_TEST_SUITE_P(
    Grid, LocalAttentionGradGpuKernel,
    ::testing::Values(LocalGradCase{64, 16, 1, 0, true, 64, "Causal", 16},
                      LocalGradCase{64, 16, 1, 1, false, 64, "LookAround", 16},
                      LocalGradCase{64, 32, 2, 1, true, 53, "TwoWarpsPadding",
                                    16}),
    [](const ::testing::TestParamInfo<LocalGradCase> &info) {
      return info.param.name;
    });

} // namespace
