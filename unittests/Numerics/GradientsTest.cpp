//===- GradientsTest.cpp - Compiled gradients vs finite differences -------===//
//
// Every gradient op against central differences of the double-precision
// reference forward (h = 1e-5: truncation error ~1e-10, far below the fp32
// error of the compiled gradients), within 1e-4 relative to the largest
// gradient. The Adam update against its equations in double precision.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"
#include "Reference.h"

#include "llvm/Support/FormatVariadic.h"

#include "gtest/gtest.h"

#include <cmath>
#include <functional>

using namespace harness;
using reference::Vec;

namespace {

constexpr double kTolerance = 1e-4;

// Rows 2×5 (batch × length), K = 6 inputs, N = 7 outputs.
constexpr int64_t kRows = 10, kK = 6, kN = 7;

TEST(Gradients, DenseMatchesFiniteDifferences) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x: tensor<2x5x6xf32>, %w: tensor<6x7xf32>, %dy: tensor<2x5x7xf32>)
        -> (tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<7xf32>) {
      %dx, %dw, %db = reformer.dense_grad %x, %w, %dy
          : (tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<2x5x7xf32>)
          -> (tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<7xf32>)
      return %dx, %dw, %db : tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<7xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(3);
  auto x = randomFloats(rng, kRows * kK, 1.0);
  auto w = randomFloats(rng, kK * kN, 0.5);
  auto bias = randomFloats(rng, kN, 0.5);
  auto dy = randomFloats(rng, kRows * kN, 1.0);
  std::vector<float> dx(x.size()), dw(w.size()), db(kN);
  compiled->call(
      "f", {x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data()});

  // loss = Σ dy ⊙ dense(x, w, bias): its gradients are the op's.
  Vec X = toDouble(x), W = toDouble(w), B = toDouble(bias), DY = toDouble(dy);
  auto loss = [&](const Vec &xv, const Vec &wv, const Vec &bv) {
    return dot(DY, reference::dense(xv, wv, &bv, kRows, kK, kN));
  };
  EXPECT_LE(
      relativeError(dx, finiteDifferences(
                            [&](const Vec &v) { return loss(v, W, B); }, X)),
      kTolerance);
  EXPECT_LE(
      relativeError(dw, finiteDifferences(
                            [&](const Vec &v) { return loss(X, v, B); }, W)),
      kTolerance);
  EXPECT_LE(
      relativeError(db, finiteDifferences(
                            [&](const Vec &v) { return loss(X, W, v); }, B)),
      kTolerance);
}

/// Mixed precision: bf16 input and weight (activations and the weight's
/// bf16 copy), f32 output gradient. The arithmetic is f32, so f32's
/// tolerance against the reference fed the rounded values. Shapes large
/// enough for the vectorized matmuls.
TEST(Gradients, DenseWithBf16OperandsMatchesFiniteDifferences) {
  for (auto [rows, k, n] : {std::tuple<int64_t, int64_t, int64_t>{10, 6, 7},
                            {96, 64, 32},
                            {48, 32, 96}}) {
    SCOPED_TRACE(llvm::formatv("{0}x{1}x{2}", rows, k, n).str());
    std::string tx = tensorType({rows, k}, "bf16"),
                tw = tensorType({k, n}, "bf16"), tdy = tensorType({rows, n}),
                tdx = tensorType({rows, k}), tdw = tensorType({k, n}),
                tdb = tensorType({n});
    auto compiled =
        Compiled::fromSource(llvm::formatv(R"(
    func.func @f(%x: {0}, %w: {1}, %dy: {2}) -> ({3}, {4}, {5}) {
      %dx, %dw, %db = reformer.dense_grad %x, %w, %dy
          : ({0}, {1}, {2}) -> ({3}, {4}, {5})
      return %dx, %dw, %db : {3}, {4}, {5}
    })",
                                           tx, tw, tdy, tdx, tdw, tdb)
                                 .str());
    ASSERT_TRUE(compiled);
    std::mt19937 rng(3);
    auto x = randomFloats(rng, rows * k, 1.0);
    auto w = randomFloats(rng, k * n, 0.5);
    auto dy = randomFloats(rng, rows * n, 1.0);
    std::vector<uint16_t> xh, wh;
    for (auto [values, halves] : {std::pair{&x, &xh}, {&w, &wh}})
      for (float &f : *values) {
        halves->push_back(toBf16(f));
        f = fromBf16(halves->back());
      }
    std::vector<float> dx(x.size()), dw(w.size()), db(n);
    compiled->call("f", {xh.data(), wh.data(), dy.data(), dx.data(), dw.data(),
                         db.data()});
    Vec X = toDouble(x), W = toDouble(w), DY = toDouble(dy);
    auto loss = [&](const Vec &xv, const Vec &wv) {
      return dot(DY, reference::dense(xv, wv, nullptr, rows, k, n));
    };
    EXPECT_LE(
        relativeError(
            dx, finiteDifferences([&](const Vec &v) { return loss(v, W); }, X)),
        kTolerance);
    EXPECT_LE(
        relativeError(
            dw, finiteDifferences([&](const Vec &v) { return loss(X, v); }, W)),
        kTolerance);
  }
}

TEST(Gradients, LayerNormMatchesFiniteDifferences) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x: tensor<2x5x6xf32>, %g: tensor<6xf32>, %dy: tensor<2x5x6xf32>)
        -> (tensor<2x5x6xf32>, tensor<6xf32>, tensor<6xf32>) {
      %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %dy {epsilon = 1.0e-5 : f64}
          : (tensor<2x5x6xf32>, tensor<6xf32>, tensor<2x5x6xf32>)
          -> (tensor<2x5x6xf32>, tensor<6xf32>, tensor<6xf32>)
      return %dx, %dg, %db : tensor<2x5x6xf32>, tensor<6xf32>, tensor<6xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(4);
  auto x = randomFloats(rng, kRows * kK, 2.0);
  auto gamma = randomFloats(rng, kK, 1.0);
  auto beta = randomFloats(rng, kK, 1.0);
  auto dy = randomFloats(rng, kRows * kK, 1.0);
  std::vector<float> dx(x.size()), dg(kK), db(kK);
  compiled->call("f", {x.data(), gamma.data(), dy.data(), dx.data(), dg.data(),
                       db.data()});

  Vec X = toDouble(x), G = toDouble(gamma), B = toDouble(beta),
      DY = toDouble(dy);
  auto loss = [&](const Vec &xv, const Vec &gv, const Vec &bv) {
    return dot(DY, reference::layerNorm(xv, gv, bv, kRows, kK, 1e-5));
  };
  EXPECT_LE(
      relativeError(dx, finiteDifferences(
                            [&](const Vec &v) { return loss(v, G, B); }, X)),
      kTolerance);
  EXPECT_LE(
      relativeError(dg, finiteDifferences(
                            [&](const Vec &v) { return loss(X, v, B); }, G)),
      kTolerance);
  EXPECT_LE(
      relativeError(db, finiteDifferences(
                            [&](const Vec &v) { return loss(X, G, v); }, B)),
      kTolerance);
}

class ChunkedFfnGrad
    : public ::testing::TestWithParam<std::tuple<int64_t, std::string>> {};

/// 74 rows (2 × 37) in chunks of 7 (a remainder of 4) or one chunk; every
/// activation's derivative.
TEST_P(ChunkedFfnGrad, MatchesFiniteDifferences) {
  auto [chunk, act] = GetParam();
  auto compiled = Compiled::fromSource(llvm::formatv(R"(
    func.func @f(%x: tensor<2x37x16xf32>, %w1: tensor<16x24xf32>, %b1: tensor<24xf32>,
                 %w2: tensor<24x16xf32>, %dy: tensor<2x37x16xf32>)
        -> (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>,
            tensor<24x16xf32>, tensor<16xf32>) {
      %dx, %dw1, %db1, %dw2, %db2 = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy
          {{chunk = {0} : i64, activation = #reformer.activation<{1}>}
          : (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>,
             tensor<24x16xf32>, tensor<2x37x16xf32>)
          -> (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>,
              tensor<24x16xf32>, tensor<16xf32>)
      return %dx, %dw1, %db1, %dw2, %db2 : tensor<2x37x16xf32>, tensor<16x24xf32>,
          tensor<24xf32>, tensor<24x16xf32>, tensor<16xf32>
    })",
                                                     chunk, act)
                                           .str());
  ASSERT_TRUE(compiled);
  constexpr int64_t rows = 74, m = 16, f = 24;
  std::mt19937 rng(7);
  auto x = randomFloats(rng, rows * m, 1.0);
  auto w1 = randomFloats(rng, m * f, 0.3), b1 = randomFloats(rng, f, 0.3);
  auto w2 = randomFloats(rng, f * m, 0.3), b2 = randomFloats(rng, m, 0.3);
  auto dy = randomFloats(rng, rows * m, 1.0);
  std::vector<float> dx(x.size()), dw1(w1.size()), db1(f), dw2(w2.size()),
      db2(m);
  compiled->call("f",
                 {x.data(), w1.data(), b1.data(), w2.data(), dy.data(),
                  dx.data(), dw1.data(), db1.data(), dw2.data(), db2.data()});

  Vec X = toDouble(x), W1 = toDouble(w1), B1 = toDouble(b1), W2 = toDouble(w2),
      B2 = toDouble(b2), DY = toDouble(dy);
  auto loss = [&](const Vec &xv, const Vec &w1v, const Vec &b1v, const Vec &w2v,
                  const Vec &b2v) {
    return dot(DY,
               reference::feedForward(xv, w1v, b1v, w2v, b2v, rows, m, f, act));
  };
  auto fd = [&](int which) {
    Vec args[5] = {X, W1, B1, W2, B2};
    return finiteDifferences(
        [&](const Vec &v) {
          Vec a[5] = {X, W1, B1, W2, B2};
          a[which] = v;
          return loss(a[0], a[1], a[2], a[3], a[4]);
        },
        args[which]);
  };
  EXPECT_LE(relativeError(dx, fd(0)), kTolerance) << "input";
  EXPECT_LE(relativeError(dw1, fd(1)), kTolerance) << "w1";
  EXPECT_LE(relativeError(db1, fd(2)), kTolerance) << "b1";
  EXPECT_LE(relativeError(dw2, fd(3)), kTolerance) << "w2";
  EXPECT_LE(relativeError(db2, fd(4)), kTolerance) << "b2";
}

INSTANTIATE_TEST_SUITE_P(
    ChunksAndActivations, ChunkedFfnGrad,
    ::testing::Combine(::testing::Values(7, 74),
                       ::testing::Values("relu", "gelu", "gelu_tanh", "silu")),
    [](const auto &info) {
      return "chunk" + std::to_string(std::get<0>(info.param)) + "_" +
             std::get<1>(info.param);
    });

class CrossEntropyGrad : public ::testing::TestWithParam<bool> {};

TEST_P(CrossEntropyGrad, MatchesFiniteDifferences) {
  bool weighted = GetParam();
  std::string weightsArg = weighted ? ", %w: tensor<2x5xf32>" : "";
  std::string weightsUse = weighted ? " weights(%w)" : "";
  std::string weightsType = weighted ? ", tensor<2x5xf32>" : "";
  auto compiled = Compiled::fromSource(
      "func.func @f(%l: tensor<2x5x7xf32>, %t: tensor<2x5xi32>" + weightsArg +
      ") -> tensor<2x5x7xf32> {\n"
      "  %d = reformer.softmax_cross_entropy_grad %l, %t" +
      weightsUse + " : (tensor<2x5x7xf32>, tensor<2x5xi32>" + weightsType +
      ") -> tensor<2x5x7xf32>\n"
      "  return %d : tensor<2x5x7xf32>\n}");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(5);
  auto logits = randomFloats(rng, kRows * kN, 3.0);
  std::vector<int32_t> targets(kRows);
  std::vector<float> weights(kRows);
  for (int64_t i = 0; i < kRows; ++i) {
    targets[i] = int32_t(rng() % kN);
    weights[i] = i % 3 == 0 ? 0.0f : float(0.5 + (rng() % 100) / 100.0);
  }
  std::vector<float> grad(logits.size());
  std::vector<void *> args = {logits.data(), targets.data()};
  if (weighted)
    args.push_back(weights.data());
  args.push_back(grad.data());
  compiled->call("f", args);

  // The weighted mean of per-position losses, each from the reference.
  auto loss = [&](const Vec &l) {
    double total = 0, weight = 0;
    for (int64_t i = 0; i < kRows; ++i) {
      Vec row(l.begin() + i * kN, l.begin() + (i + 1) * kN);
      double w = weighted ? weights[i] : 1.0;
      total += w * reference::crossEntropy(row, {targets[i]}, kN);
      weight += w;
    }
    return total / weight;
  };
  EXPECT_LE(relativeError(grad, finiteDifferences(loss, toDouble(logits))),
            kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Weights, CrossEntropyGrad, ::testing::Bool(),
                         [](const auto &info) {
                           return info.param ? "weighted" : "unweighted";
                         });

/// Three AdamW steps (trax's β2 = 0.98, ε = 1e-9, a weight decay) against
/// the update equations in double precision.
TEST(Gradients, EmbeddingMatchesFiniteDifferences) {
  // Vocab 7 over 2 × 6 tokens: some ids repeat, id 6 never occurs.
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%tokens: tensor<2x6xi32>, %dy: tensor<2x6x5xf32>)
        -> tensor<7x5xf32> {
      %g = reformer.embedding_grad %tokens, %dy
          : (tensor<2x6xi32>, tensor<2x6x5xf32>) -> tensor<7x5xf32>
      return %g : tensor<7x5xf32>
    })");
  ASSERT_TRUE(compiled);
  std::vector<int32_t> tokens = {0, 3, 3, 1, 5, 2, 4, 0, 3, 2, 2, 1};
  std::mt19937 rng(8);
  auto dy = randomFloats(rng, 2 * 6 * 5, 1.0);
  std::vector<float> grad(7 * 5);
  compiled->call("f", {tokens.data(), dy.data(), grad.data()});
  Vec DY = toDouble(dy);
  auto loss = [&](const Vec &table) {
    double s = 0;
    for (size_t p = 0; p < tokens.size(); ++p)
      for (int64_t e = 0; e < 5; ++e)
        s += DY[p * 5 + e] * table[tokens[p] * 5 + e];
    return s;
  };
  Vec table(7 * 5, 0.5);
  EXPECT_LE(relativeError(grad, finiteDifferences(loss, table)), kTolerance);
  for (int64_t e = 0; e < 5; ++e)
    EXPECT_EQ(grad[6 * 5 + e], 0.0f) << "a token that never occurs";
}

TEST(Gradients, AxialPositionsMatchFiniteDifferences) {
  // Axes 3 × 4 = 12 positions cover L = 10 (the last two are unused).
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%dy: tensor<2x10x6xf32>) -> (tensor<3x2xf32>, tensor<4x4xf32>) {
      %g:2 = reformer.axial_pos_embedding_grad %dy
          : (tensor<2x10x6xf32>) -> (tensor<3x2xf32>, tensor<4x4xf32>)
      return %g#0, %g#1 : tensor<3x2xf32>, tensor<4x4xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(9);
  auto dy = randomFloats(rng, 2 * 10 * 6, 1.0);
  std::vector<float> g0(3 * 2), g1(4 * 4);
  compiled->call("f", {dy.data(), g0.data(), g1.data()});
  Vec DY = toDouble(dy);
  std::vector<int64_t> shape = {3, 4}, dims = {2, 4};
  Vec w0 = toDouble(randomFloats(rng, 3 * 2, 1.0));
  Vec w1 = toDouble(randomFloats(rng, 4 * 4, 1.0));
  auto loss = [&](const Vec &a, const Vec &b) {
    Vec table = reference::axialPositions({a, b}, shape, dims, 10);
    double s = 0;
    for (int64_t batch = 0; batch < 2; ++batch)
      s += dot(Vec(DY.begin() + batch * 60, DY.begin() + (batch + 1) * 60),
               table);
    return s;
  };
  EXPECT_LE(
      relativeError(
          g0, finiteDifferences([&](const Vec &v) { return loss(v, w1); }, w0)),
      kTolerance);
  EXPECT_LE(
      relativeError(
          g1, finiteDifferences([&](const Vec &v) { return loss(w0, v); }, w1)),
      kTolerance);
}

/// One AdamW step of the reference state, in double precision: β1 = 0.9,
/// β2 = 0.98, ε = 1e-9 and weight decay 0.01, as the functions below
/// configure the op.
struct AdamReference {
  Vec p, m, v;

  void step(const std::vector<float> &grad, double lr, int t) {
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.98 * v[i] + 0.02 * g * g;
      double mHat = m[i] / (1 - std::pow(0.9, t));
      double vHat = v[i] / (1 - std::pow(0.98, t));
      p[i] -= lr * (mHat / (std::sqrt(vHat) + 1e-9) + 0.01 * p[i]);
    }
  }
};

/// `reformer.adam_update` of a parameter of type `type` (in `f`'s
/// signature: %pN, %gN, %mN, %vN), results %pN2, %mN2, %vN2.
std::string adamUpdate(int n, const std::string &type) {
  return llvm::formatv(R"(
      %p{0}2, %m{0}2, %v{0}2 = reformer.adam_update %p{0}, %g{0}, %m{0}, %v{0}, %lr, %s
          {{beta1 = 0.9 : f64, beta2 = 0.98 : f64, epsilon = 1.0e-9 : f64,
           weight_decay = 0.01 : f64}
          : ({1}, {1}, {1}, {1}, tensor<f32>, tensor<f32>) -> ({1}, {1}, {1}))",
                       n, type)
      .str();
}

TEST(Gradients, AdamUpdateMatchesEquations) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%p0: tensor<6x7xf32>, %g0: tensor<6x7xf32>, %m0: tensor<6x7xf32>,
                 %v0: tensor<6x7xf32>, %lr: tensor<f32>, %s: tensor<f32>)
        -> (tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>) {)" +
                                       adamUpdate(0, "tensor<6x7xf32>") + R"(
      return %p02, %m02, %v02 : tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(6);
  size_t n = 42;
  auto param = randomFloats(rng, n, 1.0);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  AdamReference ref{toDouble(param), Vec(n, 0.0), Vec(n, 0.0)};
  for (int step = 1; step <= 3; ++step) {
    auto grad = randomFloats(rng, n, 1.0);
    float lr = 0.01f * step, t = float(step);
    std::vector<float> p2(n), m2(n), v2(n);
    compiled->call("f", {param.data(), grad.data(), m.data(), v.data(), &lr, &t,
                         p2.data(), m2.data(), v2.data()});
    ref.step(grad, lr, step);
    EXPECT_LE(relativeError(m2, ref.m), 1e-5) << "step " << step;
    EXPECT_LE(relativeError(v2, ref.v), 1e-5) << "step " << step;
    EXPECT_LE(relativeError(p2, ref.p), 1e-5) << "step " << step;
    param = p2;
    m = m2;
    v = v2;
  }
}

// The GPU pipeline merges a step's updates into one loop (one kernel) that
// finds each element's parameter by its offset; here three parameters of
// 42, 5 and 24 elements (boundaries inside a block of threads), through
// the GPU loop mapping run on the CPU.
TEST(Gradients, MergedAdamUpdatesMatchEquations) {
  const char *types[] = {"tensor<6x7xf32>", "tensor<5xf32>",
                         "tensor<2x3x4xf32>"};
  const size_t sizes[] = {42, 5, 24};
  std::string args, results, returned, body;
  for (int k = 0; k < 3; ++k) {
    std::string t = types[k];
    args +=
        llvm::formatv("%p{0}: {1}, %g{0}: {1}, %m{0}: {1}, %v{0}: {1}, ", k, t);
    results += llvm::formatv("{0}{1}, {1}, {1}", k ? ", " : "", t);
    returned += llvm::formatv("{0}%p{1}2, %m{1}2, %v{1}2", k ? ", " : "", k);
    body += adamUpdate(k, t);
  }
  std::string source = "func.func @f(" + args +
                       "%lr: tensor<f32>, %s: tensor<f32>) -> (" + results +
                       ") {" + body + "\n return " + returned + " : " +
                       results + "\n}";
  auto compiled = Compiled::fromSource(source, gpuMappingOnCpuStages());
  ASSERT_TRUE(compiled);
  std::mt19937 rng(7);
  std::vector<std::vector<float>> p(3), m(3), v(3);
  std::vector<AdamReference> ref(3);
  for (int k = 0; k < 3; ++k) {
    p[k] = randomFloats(rng, sizes[k], 1.0);
    m[k] = randomFloats(rng, sizes[k], 0.1);
    v[k] = randomFloats(rng, sizes[k], 0.1);
    for (float &x : v[k])
      x = x * x;
    ref[k] = {toDouble(p[k]), toDouble(m[k]), toDouble(v[k])};
  }
  for (int step = 1; step <= 3; ++step) {
    float lr = 0.01f * step, t = float(step);
    std::vector<std::vector<float>> g(3), p2(3), m2(3), v2(3);
    std::vector<void *> pointers;
    for (int k = 0; k < 3; ++k) {
      g[k] = randomFloats(rng, sizes[k], 1.0);
      for (std::vector<float> *x : {&p[k], &g[k], &m[k], &v[k]})
        pointers.push_back(x->data());
    }
    pointers.push_back(&lr);
    pointers.push_back(&t);
    for (int k = 0; k < 3; ++k) {
      for (auto *x : {&p2[k], &m2[k], &v2[k]}) {
        x->resize(sizes[k]);
        pointers.push_back(x->data());
      }
    }
    compiled->call("f", pointers);
    for (int k = 0; k < 3; ++k) {
      ref[k].step(g[k], lr, step);
      EXPECT_LE(relativeError(m2[k], ref[k].m), 1e-5)
          << "parameter " << k << ", step " << step;
      EXPECT_LE(relativeError(v2[k], ref[k].v), 1e-5)
          << "parameter " << k << ", step " << step;
      EXPECT_LE(relativeError(p2[k], ref[k].p), 1e-5)
          << "parameter " << k << ", step " << step;
      p[k] = p2[k];
      m[k] = m2[k];
      v[k] = v2[k];
    }
  }
}

TEST(Gradients, DropoutMasksFollowTheSemantics) {
  // 64 × 1000 elements: the mask of every element against the reference's
  // implementation of the documented hash, and the kept fraction.
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x: tensor<64x1000xf32>, %s: tensor<i64>)
        -> (tensor<64x1000xf32>, tensor<64x1000xf32>) {
      %a = reformer.dropout %x seed(%s) {rate = 0.3 : f64, salt = 5 : i64}
          : (tensor<64x1000xf32>, tensor<i64>) -> tensor<64x1000xf32>
      %b = reformer.dropout %x seed(%s) {rate = 0.3 : f64, salt = 6 : i64}
          : (tensor<64x1000xf32>, tensor<i64>) -> tensor<64x1000xf32>
      return %a, %b : tensor<64x1000xf32>, tensor<64x1000xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(15);
  auto x = randomFloats(rng, 64000, 1.0);
  std::vector<float> a(64000), b(64000);
  int64_t seed = 123456789;
  compiled->call("f", {x.data(), &seed, a.data(), b.data()});
  Vec expected = reference::dropout(toDouble(x), 0.3, seed, 5);
  EXPECT_LE(relativeError(a, expected), 1e-6);
  size_t kept = 0, same = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    kept += a[i] != 0;
    same += (a[i] != 0) == (b[i] != 0);
  }
  EXPECT_NEAR(double(kept) / a.size(), 0.7, 0.01);
  // Another salt, another mask (agreement 0.7² + 0.3² = 58 % by chance).
  EXPECT_NEAR(double(same) / a.size(), 0.58, 0.02);
}

/// Adafactor in double precision, from the equations of the op (trax's
/// configuration: no momentum, factored moments for rank ≥ 2, update
/// clipping, relative step). `rows` × `cols` is the parameter with every
/// dimension but the last flattened into rows; cols = 0: unfactored.
struct AdafactorReference {
  int64_t rows, cols;
  Vec vr, vc;
  void step(Vec &p, const std::vector<float> &g, double lr, int t) {
    double rho = 1 - std::pow(double(t), -0.8), eps1 = 1e-30;
    size_t n = p.size();
    Vec u(n);
    if (cols == 0) {
      for (size_t i = 0; i < n; ++i) {
        vr[i] = rho * vr[i] + (1 - rho) * (double(g[i]) * g[i] + eps1);
        u[i] = g[i] / std::sqrt(vr[i]);
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t c = 0; c < cols; ++c)
          s += double(g[r * cols + c]) * g[r * cols + c] + eps1;
        vr[r] = rho * vr[r] + (1 - rho) * s / cols;
      }
      for (int64_t c = 0; c < cols; ++c) {
        double s = 0;
        for (int64_t r = 0; r < rows; ++r)
          s += double(g[r * cols + c]) * g[r * cols + c] + eps1;
        vc[c] = rho * vc[c] + (1 - rho) * s / rows;
      }
      double meanRow = 0;
      for (double v : vr)
        meanRow += v / rows;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          u[r * cols + c] =
              g[r * cols + c] / std::sqrt(vr[r] / meanRow * vc[c]);
    }
    double su = 0, sp = 0;
    for (size_t i = 0; i < n; ++i) {
      su += u[i] * u[i];
      sp += p[i] * p[i];
    }
    double denom = std::max(1.0, std::sqrt(su / n) / 1.0);
    double scale = lr * std::max(1e-3, std::sqrt(sp / n));
    for (size_t i = 0; i < n; ++i)
      p[i] -= scale * u[i] / denom;
  }
};

TEST(Gradients, AdafactorMatchesEquations) {
  // A rank-3 parameter (rows 2·3 = 6, columns 5) and a vector.
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%w: tensor<2x3x5xf32>, %g: tensor<2x3x5xf32>, %r: tensor<6xf32>,
                 %c: tensor<5xf32>, %b: tensor<7xf32>, %gb: tensor<7xf32>,
                 %vb: tensor<7xf32>, %lr: tensor<f32>, %t: tensor<f32>)
        -> (tensor<2x3x5xf32>, tensor<6xf32>, tensor<5xf32>, tensor<7xf32>,
            tensor<7xf32>) {
      %w2, %r2, %c2 = reformer.adafactor_update %w, %g, %lr, %t rows(%r) cols(%c)
          : (tensor<2x3x5xf32>, tensor<2x3x5xf32>, tensor<f32>, tensor<f32>,
             tensor<6xf32>, tensor<5xf32>)
          -> (tensor<2x3x5xf32>, tensor<6xf32>, tensor<5xf32>)
      %b2, %vb2 = reformer.adafactor_update %b, %gb, %lr, %t rows(%vb)
          : (tensor<7xf32>, tensor<7xf32>, tensor<f32>, tensor<f32>, tensor<7xf32>)
          -> (tensor<7xf32>, tensor<7xf32>)
      return %w2, %r2, %c2, %b2, %vb2
          : tensor<2x3x5xf32>, tensor<6xf32>, tensor<5xf32>, tensor<7xf32>,
            tensor<7xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(14);
  auto w = randomFloats(rng, 30, 1.0), b = randomFloats(rng, 7, 0.01);
  std::vector<float> r(6, 0.0f), c(5, 0.0f), vb(7, 0.0f);
  Vec W = toDouble(w), B = toDouble(b);
  AdafactorReference refW{6, 5, Vec(6, 0.0), Vec(5, 0.0)};
  AdafactorReference refB{7, 0, Vec(7, 0.0), {}};
  for (int t = 1; t <= 3; ++t) {
    auto g = randomFloats(rng, 30, 1.0), gb = randomFloats(rng, 7, 1.0);
    float lr = 0.01f, step = float(t);
    std::vector<float> w2(30), r2(6), c2(5), b2(7), vb2(7);
    compiled->call("f", {w.data(), g.data(), r.data(), c.data(), b.data(),
                         gb.data(), vb.data(), &lr, &step, w2.data(), r2.data(),
                         c2.data(), b2.data(), vb2.data()});
    Vec oldW = W, oldB = B;
    refW.step(W, g, lr, t);
    refB.step(B, gb, lr, t);
    // The updates themselves, not only the (much larger) parameters.
    auto delta = [](const std::vector<float> &now, const Vec &before) {
      std::vector<float> d(now.size());
      for (size_t i = 0; i < now.size(); ++i)
        d[i] = float(double(now[i]) - before[i]);
      return d;
    };
    auto expected = [](const Vec &now, const Vec &before) {
      Vec d(now.size());
      for (size_t i = 0; i < now.size(); ++i)
        d[i] = now[i] - before[i];
      return d;
    };
    EXPECT_LE(relativeError(r2, refW.vr), 1e-5) << "step " << t;
    EXPECT_LE(relativeError(c2, refW.vc), 1e-5) << "step " << t;
    EXPECT_LE(relativeError(delta(w2, oldW), expected(W, oldW)), 1e-4)
        << "step " << t;
    EXPECT_LE(relativeError(vb2, refB.vr), 1e-5) << "step " << t;
    EXPECT_LE(relativeError(delta(b2, oldB), expected(B, oldB)), 1e-4)
        << "step " << t;
    W = toDouble(w2);
    B = toDouble(b2);
    w = w2, r = r2, c = c2, b = b2, vb = vb2;
  }
}

TEST(Gradients, ClippedAdamMatchesEquations) {
  // clip_scale over two gradients, then Adam on the scaled first one.
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%p: tensor<6x7xf32>, %g: tensor<6x7xf32>, %h: tensor<5xf32>,
                 %m: tensor<6x7xf32>, %v: tensor<6x7xf32>, %lr: tensor<f32>,
                 %s: tensor<f32>)
        -> (tensor<f32>, tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>) {
      %c = reformer.clip_scale %g, %h {max_norm = 2.0 : f64}
          : (tensor<6x7xf32>, tensor<5xf32>) -> tensor<f32>
      %p2, %m2, %v2 = reformer.adam_update %p, %g, %m, %v, %lr, %s scale(%c)
          {beta2 = 0.98 : f64}
          : (tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>,
             tensor<f32>, tensor<f32>, tensor<f32>)
          -> (tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>)
      return %c, %p2, %m2, %v2
          : tensor<f32>, tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(12);
  for (double size : {1.0, 0.01}) { // clipped, then not (norm below 2)
    auto param = randomFloats(rng, 42, 1.0);
    auto g = randomFloats(rng, 42, size), h = randomFloats(rng, 5, size);
    std::vector<float> m(42, 0.0f), v(42, 0.0f), p2(42), m2(42), v2(42);
    float lr = 0.01f, t = 1.0f, c = 0;
    compiled->call("f", {param.data(), g.data(), h.data(), m.data(), v.data(),
                         &lr, &t, &c, p2.data(), m2.data(), v2.data()});
    double sq = 0;
    for (float x : g)
      sq += double(x) * x;
    for (float x : h)
      sq += double(x) * x;
    double scale = std::min(1.0, 2.0 / (std::sqrt(sq) + 1e-6));
    EXPECT_NEAR(c, scale, 1e-6 * scale) << "gradient size " << size;
    Vec M(42), V(42), P(42);
    for (size_t i = 0; i < 42; ++i) {
      double gi = scale * g[i];
      M[i] = 0.1 * gi;
      V[i] = 0.02 * gi * gi;
      P[i] = param[i] - 0.01 * ((M[i] / 0.1) / (std::sqrt(V[i] / 0.02) + 1e-8));
    }
    EXPECT_LE(relativeError(m2, M), 1e-5);
    EXPECT_LE(relativeError(v2, V), 1e-5);
    EXPECT_LE(relativeError(p2, P), 1e-5);
  }
}

} // namespace
