// RUN: reformer-opt %s --rf-decompose-lsh-attention --split-input-file --verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @seeded
// CHECK-SAME: (%[[QK:.+]]: tensor<2x4x128x16xf32>, %[[V:.+]]: tensor<2x4x128x16xf32>)
// CHECK: %[[ROT:.+]] = reformer.lsh_rotations {seed = 7 : i64} : tensor<4x16x2x12xf32>
// CHECK: %[[B:.+]] = reformer.lsh_hash %[[QK]], %[[ROT]] {n_buckets = array<i64: 8, 16>} : (tensor<2x4x128x16xf32>, tensor<4x16x2x12xf32>) -> tensor<2x4x2x128xi32>
// CHECK: %[[P:.+]], %[[I:.+]] = reformer.bucket_sort %[[B]] {num_buckets = 128 : i64}
// CHECK: %[[O:.+]], %[[L:.+]] = reformer.sorted_chunk_attention %[[QK]], %[[V]], %[[P]] {causal, chunk_len = 32 : i64} : {{.*}} -> (tensor<2x4x2x128x16xf32>, tensor<2x4x2x128xf32>)
// CHECK: %[[OU:.+]] = reformer.unsort %[[O]], %[[I]]
// CHECK: %[[LU:.+]] = reformer.unsort %[[L]], %[[I]]
// CHECK: %[[R:.+]] = reformer.combine_rounds %[[OU]], %[[LU]] : (tensor<2x4x2x128x16xf32>, tensor<2x4x2x128xf32>) -> tensor<2x4x128x16xf32>
// CHECK: return %[[R]]
func.func @seeded(%qk: tensor<2x4x128x16xf32>, %v: tensor<2x4x128x16xf32>) -> tensor<2x4x128x16xf32> {
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8, 16>, chunk_len = 32 : i64, causal, seed = 7 : i64}
      : (tensor<2x4x128x16xf32>, tensor<2x4x128x16xf32>) -> tensor<2x4x128x16xf32>
  return %0 : tensor<2x4x128x16xf32>
}

// -----

// Supplied rotations, a mask, duplicate correction and training results.
// CHECK-LABEL: func.func @training
// CHECK-SAME: (%[[QK:.+]]: tensor<1x2x64x8xf32>, %[[V:.+]]: tensor<1x2x64x8xf32>, %[[ROT:.+]]: tensor<2x8x4x4xf32>, %[[M:.+]]: tensor<1x64xi1>)
// CHECK-NOT: reformer.lsh_rotations
// CHECK: %[[B:.+]] = reformer.lsh_hash %[[QK]], %[[ROT]]
// CHECK: %[[P:.+]], %[[I:.+]] = reformer.bucket_sort %[[B]] {num_buckets = 8 : i64}
// CHECK: %[[O:.+]], %[[L:.+]] = reformer.sorted_chunk_attention %[[QK]], %[[V]], %[[P]] inverse(%[[I]]) mask(%[[M]]) {chunk_len = 16 : i64, chunks_after = 1 : i64, chunks_before = 2 : i64, duplicate_correction}
// CHECK: reformer.unsort %[[O]], %[[I]]
// CHECK: %[[LU:.+]] = reformer.unsort %[[L]], %[[I]]
// CHECK: %[[R:.+]] = reformer.combine_rounds
// CHECK: return %[[R]], %[[LU]], %[[B]]
func.func @training(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>, %rot: tensor<2x8x4x4xf32>, %m: tensor<1x64xi1>)
    -> (tensor<1x2x64x8xf32>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xi32>) {
  %0:3 = reformer.lsh_attention %qk, %v rotations(%rot) mask(%m)
      {n_hashes = 4 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, chunks_before = 2 : i64, chunks_after = 1 : i64, duplicate_correction}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<2x8x4x4xf32>, tensor<1x64xi1>)
      -> (tensor<1x2x64x8xf32>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xi32>)
  return %0#0, %0#1, %0#2 : tensor<1x2x64x8xf32>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xi32>
}

// -----

func.func @dynamic(%qk: tensor<?x4x128x16xf32>) -> tensor<?x4x128x16xf32> {
  // expected-error @+1 {{'reformer.lsh_attention' op cannot be decomposed: rf-decompose-lsh-attention needs static shapes}}
  %0 = reformer.lsh_attention %qk, %qk {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 32 : i64, seed = 7 : i64}
      : (tensor<?x4x128x16xf32>, tensor<?x4x128x16xf32>) -> tensor<?x4x128x16xf32>
  return %0 : tensor<?x4x128x16xf32>
}

// -----

// Seeded rotations are f32 whatever the heads' type: the hash computes in
// f32, and bf16 rotations would move positions across bucket borders.
// CHECK-LABEL: func.func @seeded_bf16
// CHECK: %[[ROT:.+]] = reformer.lsh_rotations {seed = 3 : i64} : tensor<2x16x2x4xf32>
// CHECK: reformer.lsh_hash %{{.*}}, %[[ROT]] {n_buckets = array<i64: 8>} : (tensor<1x2x64x16xbf16>, tensor<2x16x2x4xf32>) -> tensor<1x2x2x64xi32>
func.func @seeded_bf16(%qk: tensor<1x2x64x16xbf16>, %v: tensor<1x2x64x16xbf16>) -> tensor<1x2x64x16xbf16> {
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, causal, seed = 3 : i64}
      : (tensor<1x2x64x16xbf16>, tensor<1x2x64x16xbf16>) -> tensor<1x2x64x16xbf16>
  return %0 : tensor<1x2x64x16xbf16>
}
