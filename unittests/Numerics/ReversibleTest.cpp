//===- ReversibleTest.cpp - Inputs recomputed from a block's outputs ------===//
//
// The reconstruction the training step performs for every reversible block
// — `x2 = y2 − G(y1)`, then `x1 = y1 − F(x2)` with F's LSH attention
// recomputed from the forward's stored buckets (bucket_sort →
// sorted_chunk_attention → unsort → combine_rounds, as
// rf-derive-training-step emits it) — reproduces the block's inputs within
// 1e-5 relative in fp32, at L = 1024. The stored buckets are what make this
// robust: re-hashing the slightly different reconstructed x2 could move a
// position whose hash is a near tie to another bucket.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"
#include "Reference.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace harness;

namespace {

TEST(Reversible, RecomputationReproducesTheInputs) {
  auto compiled = Compiled::fromSource(R"(
    func.func @f(%x1: tensor<1x1024x64xf32>, %x2: tensor<1x1024x64xf32>,
                 %g: tensor<64xf32>, %b: tensor<64xf32>,
                 %wqk: tensor<64x64xf32>, %wv: tensor<64x64xf32>,
                 %wo: tensor<64x64xf32>, %w1: tensor<64x128xf32>,
                 %b1: tensor<128xf32>, %w2: tensor<128x64xf32>,
                 %b2: tensor<64xf32>)
        -> (tensor<1x1024x64xf32>, tensor<1x1024x64xf32>) {
      // Forward: y1 = x1 + F(x2), y2 = x2 + G(y1); F keeps its buckets.
      %n = reformer.layer_norm %x2, %g, %b : (tensor<1x1024x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x1024x64xf32>
      %qk = reformer.dense %n, %wqk : (tensor<1x1024x64xf32>, tensor<64x64xf32>) -> tensor<1x1024x64xf32>
      %v = reformer.dense %n, %wv : (tensor<1x1024x64xf32>, tensor<64x64xf32>) -> tensor<1x1024x64xf32>
      %qkh = reformer.split_heads %qk : (tensor<1x1024x64xf32>) -> tensor<1x2x1024x32xf32>
      %vh = reformer.split_heads %v : (tensor<1x1024x64xf32>) -> tensor<1x2x1024x32xf32>
      %o, %lse, %buckets = reformer.lsh_attention %qkh, %vh {n_hashes = 2 : i64,
          n_buckets = array<i64: 16>, chunk_len = 64 : i64, causal, seed = 3 : i64}
          : (tensor<1x2x1024x32xf32>, tensor<1x2x1024x32xf32>)
          -> (tensor<1x2x1024x32xf32>, tensor<1x2x2x1024xf32>, tensor<1x2x2x1024xi32>)
      %om = reformer.merge_heads %o : (tensor<1x2x1024x32xf32>) -> tensor<1x1024x64xf32>
      %f = reformer.dense %om, %wo : (tensor<1x1024x64xf32>, tensor<64x64xf32>) -> tensor<1x1024x64xf32>
      %y1 = arith.addf %x1, %f : tensor<1x1024x64xf32>
      %gn = reformer.layer_norm %y1, %g, %b : (tensor<1x1024x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x1024x64xf32>
      %gf = reformer.chunked_ffn %gn, %w1, %b1, %w2, %b2 {chunk = 128 : i64, activation = #reformer.activation<gelu>}
          : (tensor<1x1024x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<1x1024x64xf32>
      %y2 = arith.addf %x2, %gf : tensor<1x1024x64xf32>

      // Backwards: x2 = y2 − G(y1), x1 = y1 − F(x2) from the stored buckets.
      %gn2 = reformer.layer_norm %y1, %g, %b : (tensor<1x1024x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x1024x64xf32>
      %gf2 = reformer.chunked_ffn %gn2, %w1, %b1, %w2, %b2 {chunk = 128 : i64, activation = #reformer.activation<gelu>}
          : (tensor<1x1024x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<1x1024x64xf32>
      %x2r = arith.subf %y2, %gf2 : tensor<1x1024x64xf32>
      %n2 = reformer.layer_norm %x2r, %g, %b : (tensor<1x1024x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x1024x64xf32>
      %qk2 = reformer.dense %n2, %wqk : (tensor<1x1024x64xf32>, tensor<64x64xf32>) -> tensor<1x1024x64xf32>
      %v2 = reformer.dense %n2, %wv : (tensor<1x1024x64xf32>, tensor<64x64xf32>) -> tensor<1x1024x64xf32>
      %qkh2 = reformer.split_heads %qk2 : (tensor<1x1024x64xf32>) -> tensor<1x2x1024x32xf32>
      %vh2 = reformer.split_heads %v2 : (tensor<1x1024x64xf32>) -> tensor<1x2x1024x32xf32>
      %perm, %inverse = reformer.bucket_sort %buckets {num_buckets = 16 : i64}
          : (tensor<1x2x2x1024xi32>) -> (tensor<1x2x2x1024xi32>, tensor<1x2x2x1024xi32>)
      %so, %sl = reformer.sorted_chunk_attention %qkh2, %vh2, %perm {chunk_len = 64 : i64, causal}
          : (tensor<1x2x1024x32xf32>, tensor<1x2x1024x32xf32>, tensor<1x2x2x1024xi32>)
          -> (tensor<1x2x2x1024x32xf32>, tensor<1x2x2x1024xf32>)
      %uo = reformer.unsort %so, %inverse : (tensor<1x2x2x1024x32xf32>, tensor<1x2x2x1024xi32>) -> tensor<1x2x2x1024x32xf32>
      %ul = reformer.unsort %sl, %inverse : (tensor<1x2x2x1024xf32>, tensor<1x2x2x1024xi32>) -> tensor<1x2x2x1024xf32>
      %o2 = reformer.combine_rounds %uo, %ul : (tensor<1x2x2x1024x32xf32>, tensor<1x2x2x1024xf32>) -> tensor<1x2x1024x32xf32>
      %om2 = reformer.merge_heads %o2 : (tensor<1x2x1024x32xf32>) -> tensor<1x1024x64xf32>
      %f2 = reformer.dense %om2, %wo : (tensor<1x1024x64xf32>, tensor<64x64xf32>) -> tensor<1x1024x64xf32>
      %x1r = arith.subf %y1, %f2 : tensor<1x1024x64xf32>
      return %x1r, %x2r : tensor<1x1024x64xf32>, tensor<1x1024x64xf32>
    })");
  ASSERT_TRUE(compiled);
  std::mt19937 rng(31);
  auto x1 = randomFloats(rng, 1024 * 64, 1.0),
       x2 = randomFloats(rng, 1024 * 64, 1.0);
  std::vector<float> gamma(64, 1.0f), beta(64, 0.0f);
  auto wqk = randomFloats(rng, 64 * 64, 0.2),
       wv = randomFloats(rng, 64 * 64, 0.2),
       wo = randomFloats(rng, 64 * 64, 0.2),
       w1 = randomFloats(rng, 64 * 128, 0.2), b1 = randomFloats(rng, 128, 0.1),
       w2 = randomFloats(rng, 128 * 64, 0.2), b2 = randomFloats(rng, 64, 0.1);
  std::vector<float> x1r(x1.size()), x2r(x2.size());
  compiled->call("f", {x1.data(), x2.data(), gamma.data(), beta.data(),
                       wqk.data(), wv.data(), wo.data(), w1.data(), b1.data(),
                       w2.data(), b2.data(), x1r.data(), x2r.data()});
  EXPECT_LE(relativeError(x2r, toDouble(x2)), 1e-5);
  EXPECT_LE(relativeError(x1r, toDouble(x1)), 1e-5);
}

} // namespace
