// RUN: reformer-opt %s --split-input-file --verify-diagnostics

// Every verifier message of the reformer dialect, one case each.

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects n_hashes to be at least 1, got 0}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 0 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects n_buckets to have at least one factor}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects every n_buckets factor to be even and at least 2, got 7}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 4, 7>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>, %w: tensor<1x2x32x8xf32>) {
  // expected-error @+1 {{expects v of shape [1, 2, 64, 8], got [1, 2, 32, 8]}}
  %0 = reformer.lsh_attention %qk, %w {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x32x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>, %w: tensor<1x2x64x8xf16>) {
  // expected-error @+1 {{expects v with element type 'f32', got 'f16'}}
  %0 = reformer.lsh_attention %qk, %w {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf16>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects a positive chunk_len, got 0}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 0 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects non-negative chunks_before and chunks_after, got -1 and 0}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, chunks_before = -1 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{sequence length 64 is not a multiple of chunk_len 24; pad it to 72 and mask the padding}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 24 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{attention window of 3 chunks (chunks_before + 1 + chunks_after) exceeds the 2 chunks of the sorted sequence (n_hashes * L / chunk_len)}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 1 : i64, n_buckets = array<i64: 8>, chunk_len = 32 : i64, chunks_after = 1 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%seed: tensor<i64>) {
  // expected-error @+1 {{expects a seed attribute or a seed operand, not both}}
  %0 = reformer.lsh_rotations seed(%seed : tensor<i64>) {seed = 1 : i64} : tensor<2x8x2x4xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{expects a seed attribute or a seed operand}}
  %0 = reformer.lsh_rotations : tensor<2x8x2x4xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>, %r: tensor<2x8x2x4xf32>) {
  // expected-error @+1 {{expects either a rotations operand or a seed attribute, not both}}
  %0 = reformer.lsh_attention %qk, %v rotations(%r) {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<2x8x2x4xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects a rotations operand or a seed attribute to draw the rotations from}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>, %r: tensor<2x8x2x8xf32>) {
  // expected-error @+1 {{expects rotations [H, D, n_hashes, sum(n_buckets)/2] of shape [2, 8, 2, 4], got [2, 8, 2, 8]}}
  %0 = reformer.lsh_attention %qk, %v rotations(%r) {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<2x8x2x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>, %m: tensor<1x32xi1>) {
  // expected-error @+1 {{expects mask [B, L] of shape [1, 64], got [1, 32]}}
  %0 = reformer.lsh_attention %qk, %v mask(%m) {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x32xi1>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects result [B, H, L, D] of shape [1, 2, 64, 8], got [1, 2, 64, 4]}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x4xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects result with element type 'f32', got 'bf16'}}
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xbf16>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects both training results (lse and buckets) or neither, got 1 extra result(s)}}
  %0:2 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects lse [B, H, n_hashes, L] of shape [1, 2, 2, 64], got [1, 2, 1, 64]}}
  %0:3 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x1x64xf32>, tensor<1x2x2x64xi32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects lse with element type 'f32', got 'f16'}}
  %0:3 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf16>, tensor<1x2x2x64xi32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects buckets [B, H, n_hashes, L] of shape [1, 2, 2, 64], got [1, 2, 2, 32]}}
  %0:3 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf32>, tensor<1x2x2x32xi32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects buckets with element type 'i32', got 'i64'}}
  %0:3 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf32>, tensor<1x2x2x64xi64>)
  return
}

// -----

func.func @f(%q: tensor<1x2x64x8xf32>, %k: tensor<1x2x32x8xf32>) {
  // expected-error @+1 {{expects k of shape [1, 2, 64, 8], got [1, 2, 32, 8]}}
  %0 = reformer.local_attention %q, %k, %q {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%q: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf16>) {
  // expected-error @+1 {{expects v with element type 'f32', got 'f16'}}
  %0 = reformer.local_attention %q, %q, %v {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64x8xf16>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%q: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{sequence length 64 is not a multiple of chunk_len 48; pad it to 96 and mask the padding}}
  %0 = reformer.local_attention %q, %q, %q {chunk_len = 48 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%q: tensor<1x2x64x8xf32>, %m: tensor<2x64xi1>) {
  // expected-error @+1 {{expects mask [B, L] of shape [1, 64], got [2, 64]}}
  %0 = reformer.local_attention %q, %q, %q mask(%m) {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<2x64xi1>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%q: tensor<1x2x64x8xf32>) {
  // expected-error @+1 {{expects result [B, H, L, D] of shape [1, 2, 64, 8], got [1, 2, 64, 4]}}
  %0 = reformer.local_attention %q, %q, %q {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x4xf32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %r: tensor<2x8x2x4xf32>) {
  // expected-error @+1 {{expects every n_buckets factor to be even and at least 2, got 5}}
  %0 = reformer.lsh_hash %qk, %r {n_buckets = array<i64: 5>} : (tensor<1x2x64x8xf32>, tensor<2x8x2x4xf32>) -> tensor<1x2x2x64xi32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %r: tensor<2x8x2x4xf32>) {
  // expected-error @+1 {{expects rotations [H, D, n_hashes, sum(n_buckets)/2] of shape [2, 8, ?, 8], got [2, 8, 2, 4]}}
  %0 = reformer.lsh_hash %qk, %r {n_buckets = array<i64: 16>} : (tensor<1x2x64x8xf32>, tensor<2x8x2x4xf32>) -> tensor<1x2x2x64xi32>
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %r: tensor<2x8x2x4xf32>) {
  // expected-error @+1 {{expects buckets [B, H, n_hashes, L] of shape [1, 2, 2, 64], got [1, 2, 4, 64]}}
  %0 = reformer.lsh_hash %qk, %r {n_buckets = array<i64: 8>} : (tensor<1x2x64x8xf32>, tensor<2x8x2x4xf32>) -> tensor<1x2x4x64xi32>
  return
}

// -----

func.func @f(%b: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects num_buckets to be at least 1, got 0}}
  %0:2 = reformer.bucket_sort %b {num_buckets = 0 : i64} : (tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64xi32>, tensor<1x2x2x64xi32>)
  return
}

// -----

func.func @f(%b: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects perm of shape [1, 2, 2, 64], got [1, 2, 2, 32]}}
  %0:2 = reformer.bucket_sort %b {num_buckets = 8 : i64} : (tensor<1x2x2x64xi32>) -> (tensor<1x2x2x32xi32>, tensor<1x2x2x64xi32>)
  return
}

// -----

func.func @f(%b: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects inverse of shape [1, 2, 2, 64], got [1, 2, 1, 64]}}
  %0:2 = reformer.bucket_sort %b {num_buckets = 8 : i64} : (tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64xi32>, tensor<1x2x1x64xi32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x4xf32>, %p: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects v of shape [1, 2, 64, 8], got [1, 2, 64, 4]}}
  %0:2 = reformer.sorted_chunk_attention %qk, %v, %p {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x4xf32>, tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x32xi32>) {
  // expected-error @+1 {{expects perm [B, H, n_hashes, L] of shape [1, 2, ?, 64], got [1, 2, 2, 32]}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x32xi32>) -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{attention window of 9 chunks (chunks_before + 1 + chunks_after) exceeds the 8 chunks of the sorted sequence (n_hashes * L / chunk_len)}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p {chunk_len = 16 : i64, chunks_before = 8 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x64xi32>, %i: tensor<1x2x1x64xi32>) {
  // expected-error @+1 {{expects inverse of shape [1, 2, 2, 64], got [1, 2, 1, 64]}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p inverse(%i) {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>, tensor<1x2x1x64xi32>) -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects the inverse permutation operand when duplicate_correction is set}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p {chunk_len = 16 : i64, duplicate_correction} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x64xi32>, %m: tensor<1x16xi1>) {
  // expected-error @+1 {{expects mask [B, L] of shape [1, 64], got [1, 16]}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p mask(%m) {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>, tensor<1x16xi1>) -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{'reformer.sorted_chunk_attention' op result #0 must be 5D tensor of floating-point values, but got 'tensor<1x2x64x8xf32>'}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects out [B, H, n_hashes, L, D] of shape [1, 2, 2, 64, 8], got [1, 2, 2, 64, 4]}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64x4xf32>, tensor<1x2x2x64xf32>)
  return
}

// -----

func.func @f(%qk: tensor<1x2x64x8xf32>, %p: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects lse [B, H, n_hashes, L] of shape [1, 2, 2, 64], got [1, 2, 2, 32]}}
  %0:2 = reformer.sorted_chunk_attention %qk, %qk, %p {chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x32xf32>)
  return
}

// -----

func.func @f(%x: tensor<1x2x2x64x8xf32>, %i: tensor<1x2x1x64xi32>) {
  // expected-error @+1 {{expects inverse [B, H, n_hashes, L] of shape [1, 2, 2, 64], got [1, 2, 1, 64]}}
  %0 = reformer.unsort %x, %i : (tensor<1x2x2x64x8xf32>, tensor<1x2x1x64xi32>) -> tensor<1x2x2x64x8xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x2x64x8xf32>, %i: tensor<1x2x2x64xi32>) {
  // expected-error @+1 {{expects the result type to equal the input type 'tensor<1x2x2x64x8xf32>', got 'tensor<1x2x2x64x8xf16>'}}
  %0 = reformer.unsort %x, %i : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64x8xf16>
  return
}

// -----

func.func @f(%x: tensor<1x2x2x64x8xf32>, %l: tensor<1x2x3x64xf32>) {
  // expected-error @+1 {{expects lse [B, H, n_hashes, L] of shape [1, 2, 2, 64], got [1, 2, 3, 64]}}
  %0 = reformer.combine_rounds %x, %l : (tensor<1x2x2x64x8xf32>, tensor<1x2x3x64xf32>) -> tensor<1x2x64x8xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x2x64x8xf32>, %l: tensor<1x2x2x64xf32>) {
  // expected-error @+1 {{expects result [B, H, L, D] of shape [1, 2, 64, 8], got [1, 2, 2, 64]}}
  %0 = reformer.combine_rounds %x, %l : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>) -> tensor<1x2x2x64xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{expects a length in [0, 64] (the mask's sequence dimension), got 65}}
  %0 = reformer.length_mask {length = 65 : i64} : tensor<1x64xi1>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>) {
  // expected-error @+1 {{expects region 'f' to take one argument of type 'tensor<1x64x32xf32>' (x2), got 2 arguments}}
  %0:2 = reformer.reversible %x, %x : tensor<1x64x32xf32> f {
  ^bb0(%a: tensor<1x64x32xf32>, %c: tensor<1x64x32xf32>):
    reformer.yield %a : tensor<1x64x32xf32>
  } g {
  ^bb0(%b: tensor<1x64x32xf32>):
    reformer.yield %b : tensor<1x64x32xf32>
  }
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>) {
  // expected-error @+1 {{expects region 'f' to take one argument of type 'tensor<1x64x32xf32>' (x2), got one of type 'tensor<1x64x32xf16>'}}
  %0:2 = reformer.reversible %x, %x : tensor<1x64x32xf32> f {
  ^bb0(%a: tensor<1x64x32xf16>):
    reformer.yield %x : tensor<1x64x32xf32>
  } g {
  ^bb0(%b: tensor<1x64x32xf32>):
    reformer.yield %b : tensor<1x64x32xf32>
  }
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>) {
  // expected-error @+1 {{expects region 'f' to end with reformer.yield}}
  %0:2 = reformer.reversible %x, %x : tensor<1x64x32xf32> f {
  ^bb0(%a: tensor<1x64x32xf32>):
    llvm.unreachable
  } g {
  ^bb0(%b: tensor<1x64x32xf32>):
    reformer.yield %b : tensor<1x64x32xf32>
  }
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>) {
  %0:2 = reformer.reversible %x, %x : tensor<1x64x32xf32> f {
  ^bb0(%a: tensor<1x64x32xf32>):
    reformer.yield %a : tensor<1x64x32xf32>
  } g {
  ^bb0(%b: tensor<1x64x32xf32>):
    // expected-error @+1 {{expects region 'g' to yield one value of type 'tensor<1x64x32xf32>', got 'tensor<1x64x32xf32>', 'tensor<1x64x32xf32>'}}
    reformer.yield %b, %b : tensor<1x64x32xf32>, tensor<1x64x32xf32>
  }
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w1: tensor<32x128xf32>, %b1: tensor<128xf32>, %w2: tensor<128x32xf32>, %b2: tensor<32xf32>) {
  // expected-error @+1 {{expects a positive chunk, got 0}}
  %0 = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 0 : i64, activation = #reformer.activation<relu>} : (tensor<1x64x32xf32>, tensor<32x128xf32>, tensor<128xf32>, tensor<128x32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w1: tensor<16x128xf32>, %b1: tensor<128xf32>, %w2: tensor<128x32xf32>, %b2: tensor<32xf32>) {
  // expected-error @+1 {{expects w1 [d_model, d_ff] of shape [32, ?], got [16, 128]}}
  %0 = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 16 : i64, activation = #reformer.activation<relu>} : (tensor<1x64x32xf32>, tensor<16x128xf32>, tensor<128xf32>, tensor<128x32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w1: tensor<32x128xf32>, %b1: tensor<64xf32>, %w2: tensor<128x32xf32>, %b2: tensor<32xf32>) {
  // expected-error @+1 {{expects b1 [d_ff] of shape [128], got [64]}}
  %0 = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 16 : i64, activation = #reformer.activation<relu>} : (tensor<1x64x32xf32>, tensor<32x128xf32>, tensor<64xf32>, tensor<128x32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w1: tensor<32x128xf32>, %b1: tensor<128xf32>, %w2: tensor<128x16xf32>, %b2: tensor<32xf32>) {
  // expected-error @+1 {{expects w2 [d_ff, d_model] of shape [128, 32], got [128, 16]}}
  %0 = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 16 : i64, activation = #reformer.activation<relu>} : (tensor<1x64x32xf32>, tensor<32x128xf32>, tensor<128xf32>, tensor<128x16xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w1: tensor<32x128xf32>, %b1: tensor<128xf32>, %w2: tensor<128x32xf32>, %b2: tensor<16xf32>) {
  // expected-error @+1 {{expects b2 [d_model] of shape [32], got [16]}}
  %0 = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 16 : i64, activation = #reformer.activation<relu>} : (tensor<1x64x32xf32>, tensor<32x128xf32>, tensor<128xf32>, tensor<128x32xf32>, tensor<16xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w1: tensor<32x128xf32>, %b1: tensor<128xf32>, %w2: tensor<128x32xf32>, %b2: tensor<32xf32>) {
  // expected-error @+1 {{expects result [B, L, d_model] of shape [1, 64, 32], got [1, 32, 32]}}
  %0 = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 16 : i64, activation = #reformer.activation<relu>} : (tensor<1x64x32xf32>, tensor<32x128xf32>, tensor<128xf32>, tensor<128x32xf32>, tensor<32xf32>) -> tensor<1x32x32xf32>
  return
}

// -----

func.func @f(%t: tensor<2x10xi32>, %e: tensor<100x16xf32>) {
  // expected-error @+1 {{expects result [B, L, d_model] of shape [2, 10, 16], got [2, 10, 8]}}
  %0 = reformer.embedding %t, %e : (tensor<2x10xi32>, tensor<100x16xf32>) -> tensor<2x10x8xf32>
  return
}

// -----

func.func @f(%x: tensor<1x100x32xf32>) {
  // expected-error @+1 {{expects at least one axial weight}}
  %0 = reformer.axial_pos_embedding %x : (tensor<1x100x32xf32>) -> tensor<1x100x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x100x32xf32>, %a: tensor<10x16xf32>, %b: tensor<10x8xf32>) {
  // expected-error @+1 {{expects the axial embedding widths to sum to d_model = 32, got 24}}
  %0 = reformer.axial_pos_embedding %x, %a, %b : (tensor<1x100x32xf32>, tensor<10x16xf32>, tensor<10x8xf32>) -> tensor<1x100x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x100x32xf32>, %a: tensor<10x16xf32>, %b: tensor<8x16xf32>) {
  // expected-error @+1 {{expects the axial shape to cover the sequence length 100, got 80 positions}}
  %0 = reformer.axial_pos_embedding %x, %a, %b : (tensor<1x100x32xf32>, tensor<10x16xf32>, tensor<8x16xf32>) -> tensor<1x100x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x100x32xf32>, %a: tensor<10x16xf32>, %b: tensor<10x16xf32>) {
  // expected-error @+1 {{expects result of shape [1, 100, 32], got [1, 50, 32]}}
  %0 = reformer.axial_pos_embedding %x, %a, %b : (tensor<1x100x32xf32>, tensor<10x16xf32>, tensor<10x16xf32>) -> tensor<1x50x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{expects a positive epsilon, got 0}}
  %0 = reformer.layer_norm %x, %g, %g {epsilon = 0.0 : f64} : (tensor<1x64x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{expects an input of rank at least 1}}
  %0 = reformer.layer_norm %x, %g, %g : (tensor<f32>, tensor<32xf32>, tensor<32xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %g: tensor<16xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{expects gamma of shape [32], got [16]}}
  %0 = reformer.layer_norm %x, %g, %b : (tensor<1x64x32xf32>, tensor<16xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %g: tensor<32xf32>, %b: tensor<16xf32>) {
  // expected-error @+1 {{expects beta of shape [32], got [16]}}
  %0 = reformer.layer_norm %x, %g, %b : (tensor<1x64x32xf32>, tensor<32xf32>, tensor<16xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{expects result of shape [1, 64, 32], got [1, 64, 16]}}
  %0 = reformer.layer_norm %x, %g, %g : (tensor<1x64x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x64x16xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{expects an input of rank at least 1}}
  %0 = reformer.dense %x, %w : (tensor<f32>, tensor<4x8xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w: tensor<16x8xf32>) {
  // expected-error @+1 {{expects weight [K, N] of shape [32, ?], got [16, 8]}}
  %0 = reformer.dense %x, %w : (tensor<1x64x32xf32>, tensor<16x8xf32>) -> tensor<1x64x8xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w: tensor<32x8xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{expects bias [N] of shape [8], got [4]}}
  %0 = reformer.dense %x, %w, %b : (tensor<1x64x32xf32>, tensor<32x8xf32>, tensor<4xf32>) -> tensor<1x64x8xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>, %w: tensor<32x8xf32>) {
  // expected-error @+1 {{expects result of shape [1, 64, 8], got [1, 64, 32]}}
  %0 = reformer.dense %x, %w : (tensor<1x64x32xf32>, tensor<32x8xf32>) -> tensor<1x64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>) {
  // expected-error @+1 {{expects heads * head_dim = 4 * 16 = 64 to equal the model dimension 32}}
  %0 = reformer.split_heads %x : (tensor<1x64x32xf32>) -> tensor<1x4x64x16xf32>
  return
}

// -----

func.func @f(%x: tensor<1x64x32xf32>) {
  // expected-error @+1 {{expects result [B, H, L, D] of shape [1, 4, 64, 8], got [1, 4, 32, 8]}}
  %0 = reformer.split_heads %x : (tensor<1x64x32xf32>) -> tensor<1x4x32x8xf32>
  return
}

// -----

func.func @f(%x: tensor<1x4x64x8xf32>) {
  // expected-error @+1 {{expects heads * head_dim = 4 * 8 = 32 to equal the model dimension 16}}
  %0 = reformer.merge_heads %x : (tensor<1x4x64x8xf32>) -> tensor<1x64x16xf32>
  return
}

// -----

func.func @f(%x: tensor<1x4x64x8xf32>) {
  // expected-error @+1 {{expects input [B, H, L, D] of shape [2, 4, 64, 8], got [1, 4, 64, 8]}}
  %0 = reformer.merge_heads %x : (tensor<1x4x64x8xf32>) -> tensor<2x64x32xf32>
  return
}

// -----

func.func @f(%l: tensor<1x8x16xf32>, %t: tensor<1x4xi32>) {
  // expected-error @+1 {{expects targets [B, L] of shape [1, 8], got [1, 4]}}
  %0 = reformer.softmax_cross_entropy %l, %t : (tensor<1x8x16xf32>, tensor<1x4xi32>) -> tensor<f32>
  return
}

// -----

func.func @f(%l: tensor<1x8x16xf32>, %t: tensor<1x8xi32>, %w: tensor<8x1xf32>) {
  // expected-error @+1 {{expects weights [B, L] of shape [1, 8], got [8, 1]}}
  %0 = reformer.softmax_cross_entropy %l, %t weights(%w) : (tensor<1x8x16xf32>, tensor<1x8xi32>, tensor<8x1xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%q: tensor<1x2x64xf32>) {
  // expected-error @+1 {{'reformer.lsh_attention' op operand #0 must be 4D tensor of floating-point values, but got 'tensor<1x2x64xf32>'}}
  %0 = reformer.lsh_attention %q, %q {n_hashes = 1 : i64, n_buckets = array<i64: 2>, chunk_len = 16 : i64, seed = 1 : i64} : (tensor<1x2x64xf32>, tensor<1x2x64xf32>) -> tensor<1x2x64xf32>
  return
}

// -----

func.func @f(%m: tensor<1x64xi1>) {
  // expected-error @+1 {{'reformer.embedding' op operand #1 must be 2D tensor of floating-point values, but got 'tensor<1x64xi1>'}}
  %0 = reformer.embedding %m, %m : (tensor<1x64xi1>, tensor<1x64xi1>) -> tensor<1x64x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w: tensor<12x32xf32>, %dy: tensor<2x8x32xf32>) {
  // expected-error @+1 {{'reformer.dense_grad' op expects weight [K, N] of shape [16, ?], got [12, 32]}}
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<2x8x16xf32>, tensor<12x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x16xf32>, tensor<12x32xf32>, tensor<32xf32>)
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<16x32xf32>, %dy: tensor<32xf32>) {
  // expected-error @+1 {{'reformer.dense_grad' op expects an input of rank at least 1}}
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<f32>, tensor<16x32xf32>, tensor<32xf32>) -> (tensor<f32>, tensor<16x32xf32>, tensor<32xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w: tensor<16x32xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.dense_grad' op expects result_grad of shape [2, 8, 32], got [2, 8, 16]}}
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xbf16>, %w: tensor<16x32xf32>, %dy: tensor<2x8x32xf32>) {
  // expected-error @+1 {{'reformer.dense_grad' op expects input_grad with element type 'f32', got 'bf16'}}
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<2x8x16xbf16>, tensor<16x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x16xbf16>, tensor<16x32xf32>, tensor<32xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w: tensor<16x32xf32>, %dy: tensor<2x8x32xf32>) {
  // expected-error @+1 {{'reformer.dense_grad' op expects weight_grad of shape [16, 32], got [32, 16]}}
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x16xf32>, tensor<32x16xf32>, tensor<32xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w: tensor<16x32xf32>, %dy: tensor<2x8x32xf32>) {
  // expected-error @+1 {{'reformer.dense_grad' op expects bias_grad [N] of shape [32], got [16]}}
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>) {
  // expected-error @+1 {{'reformer.layer_norm_grad' op expects a positive epsilon, got 0}}
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %x {epsilon = 0.0 : f64} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<f32>, %g: tensor<16xf32>) {
  // expected-error @+1 {{'reformer.layer_norm_grad' op expects an input of rank at least 1}}
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %x : (tensor<f32>, tensor<16xf32>, tensor<f32>) -> (tensor<f32>, tensor<16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{'reformer.layer_norm_grad' op expects gamma of shape [16], got [8]}}
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %x : (tensor<2x8x16xf32>, tensor<8xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %dy: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'reformer.layer_norm_grad' op expects result_grad of shape [2, 8, 16], got [2, 4, 16]}}
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %dy : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<2x4x16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>) {
  // expected-error @+1 {{'reformer.layer_norm_grad' op expects input_grad of shape [2, 8, 16], got [2, 16]}}
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %x : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<2x8x16xf32>) -> (tensor<2x16xf32>, tensor<16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>) {
  // expected-error @+1 {{'reformer.layer_norm_grad' op expects gamma_grad of shape [16], got [8]}}
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %x : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<8xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>) {
  // expected-error @+1 {{'reformer.layer_norm_grad' op expects beta_grad with element type 'f32', got 'f16'}}
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %x : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf16>)
  return
}

// -----

func.func @f(%l: tensor<2x8x32xf32>, %t: tensor<2x4xi32>) {
  // expected-error @+1 {{'reformer.softmax_cross_entropy_grad' op expects targets [B, L] of shape [2, 8], got [2, 4]}}
  %d = reformer.softmax_cross_entropy_grad %l, %t : (tensor<2x8x32xf32>, tensor<2x4xi32>) -> tensor<2x8x32xf32>
  return
}

// -----

func.func @f(%l: tensor<2x8x32xf32>, %t: tensor<2x8xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'reformer.softmax_cross_entropy_grad' op operand #2 must be 2D tensor of floating-point values}}
  %d = reformer.softmax_cross_entropy_grad %l, %t weights(%w) : (tensor<2x8x32xf32>, tensor<2x8xi32>, tensor<8xf32>) -> tensor<2x8x32xf32>
  return
}

// -----

func.func @f(%l: tensor<2x8x32xf32>, %t: tensor<2x8xi32>, %w: tensor<2x4xf32>) {
  // expected-error @+1 {{'reformer.softmax_cross_entropy_grad' op expects weights [B, L] of shape [2, 8], got [2, 4]}}
  %d = reformer.softmax_cross_entropy_grad %l, %t weights(%w) : (tensor<2x8x32xf32>, tensor<2x8xi32>, tensor<2x4xf32>) -> tensor<2x8x32xf32>
  return
}

// -----

func.func @f(%l: tensor<2x8x32xf32>, %t: tensor<2x8xi32>) {
  // expected-error @+1 {{'reformer.softmax_cross_entropy_grad' op expects logits_grad of shape [2, 8, 32], got [2, 8, 16]}}
  %d = reformer.softmax_cross_entropy_grad %l, %t : (tensor<2x8x32xf32>, tensor<2x8xi32>) -> tensor<2x8x16xf32>
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects beta1 in [0, 1), got 1}}
  %a, %b, %c = reformer.adam_update %p, %p, %p, %p, %lr, %lr {beta1 = 1.0 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects beta2 in [0, 1), got -5.000000e-01}}
  %a, %b, %c = reformer.adam_update %p, %p, %p, %p, %lr, %lr {beta2 = -0.5 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects a positive epsilon, got 0}}
  %a, %b, %c = reformer.adam_update %p, %p, %p, %p, %lr, %lr {epsilon = 0.0 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects a non-negative weight_decay, got -1.000000e-01}}
  %a, %b, %c = reformer.adam_update %p, %p, %p, %p, %lr, %lr {weight_decay = -0.1 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %g: tensor<8xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects grad of shape [4], got [8]}}
  %a, %b, %c = reformer.adam_update %p, %g, %p, %p, %lr, %lr : (tensor<4xf32>, tensor<8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %m: tensor<4xbf16>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects m with element type 'f32', got 'bf16'}}
  %a, %b, %c = reformer.adam_update %p, %p, %m, %p, %lr, %lr : (tensor<4xf32>, tensor<4xf32>, tensor<4xbf16>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %v: tensor<2xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects v of shape [4], got [2]}}
  %a, %b, %c = reformer.adam_update %p, %p, %p, %v, %lr, %lr : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xbf16>, %m: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects new_param with element type 'bf16', got 'f32'}}
  %a, %b, %c = reformer.adam_update %p, %p, %m, %m, %lr, %lr : (tensor<4xbf16>, tensor<4xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects new_m of shape [4], got [2]}}
  %a, %b, %c = reformer.adam_update %p, %p, %p, %p, %lr, %lr : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<2xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adam_update' op expects new_v of shape [4], got [4, 1]}}
  %a, %b, %c = reformer.adam_update %p, %p, %p, %p, %lr, %lr : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4x1xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects a positive chunk, got 0}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 0 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<8x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects w1 [d_model, d_ff] of shape [16, ?], got [8, 32]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<8x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<16xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects b1 [d_ff] of shape [32], got [16]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<16xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<16x32xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects w2 [d_ff, d_model] of shape [32, 16], got [16, 32]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<16x32xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects result_grad of shape [2, 8, 16], got [2, 4, 16]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x4x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects input_grad with element type 'f32', got 'bf16'}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xbf16>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects w1_grad of shape [16, 32], got [32, 16]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<32x16xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects b1_grad of shape [32], got [16]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<16xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects w2_grad of shape [32, 16], got [16, 32]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<16x32xf32>, tensor<16xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // expected-error @+1 {{'reformer.chunked_ffn_grad' op expects b2_grad of shape [16], got [32]}}
  %a, %b, %c, %d, %e = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<relu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<32xf32>)
  return
}

// -----

func.func @f(%x: tensor<1x1x32x8xf32>, %lse: tensor<1x1x0x32xf32>, %b: tensor<1x1x0x32xi32>) {
  // expected-error @+1 {{'reformer.lsh_attention_grad' op expects lse [B, H, n_hashes, L] with at least one hash round}}
  %a, %c = reformer.lsh_attention_grad %x, %x, %x, %x lse(%lse) buckets(%b) {n_buckets = array<i64: 4>, chunk_len = 8 : i64} : (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x0x32xf32>, tensor<1x1x0x32xi32>) -> (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<1x1x32x8xf32>, %lse: tensor<1x1x2x32xf32>, %b: tensor<1x1x2x16xi32>) {
  // expected-error @+1 {{'reformer.lsh_attention_grad' op expects buckets [B, H, n_hashes, L] of shape [1, 1, 2, 32], got [1, 1, 2, 16]}}
  %a, %c = reformer.lsh_attention_grad %x, %x, %x, %x lse(%lse) buckets(%b) {n_buckets = array<i64: 4>, chunk_len = 8 : i64} : (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x2x32xf32>, tensor<1x1x2x16xi32>) -> (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<1x1x32x8xf32>, %lse: tensor<1x1x2x32xf32>, %b: tensor<1x1x2x32xi32>) {
  // expected-error @+1 {{'reformer.lsh_attention_grad' op sequence length 32 is not a multiple of chunk_len 12; pad it to 36 and mask the padding}}
  %a, %c = reformer.lsh_attention_grad %x, %x, %x, %x lse(%lse) buckets(%b) {n_buckets = array<i64: 4>, chunk_len = 12 : i64} : (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x2x32xf32>, tensor<1x1x2x32xi32>) -> (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>)
  return
}

// -----

func.func @f(%x: tensor<1x1x32x8xf32>, %lse: tensor<1x1x2x32xf32>, %b: tensor<1x1x2x32xi32>) {
  // expected-error @+1 {{'reformer.lsh_attention_grad' op expects v_grad of shape [1, 1, 32, 8], got [1, 1, 32, 4]}}
  %a, %c = reformer.lsh_attention_grad %x, %x, %x, %x lse(%lse) buckets(%b) {n_buckets = array<i64: 4>, chunk_len = 8 : i64} : (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x2x32xf32>, tensor<1x1x2x32xi32>) -> (tensor<1x1x32x8xf32>, tensor<1x1x32x4xf32>)
  return
}

// -----

func.func @f(%x: tensor<1x1x32x8xf32>, %dy: tensor<1x1x16x8xf32>) {
  // expected-error @+1 {{'reformer.local_attention_grad' op expects result_grad of shape [1, 1, 32, 8], got [1, 1, 16, 8]}}
  %a, %b, %c = reformer.local_attention_grad %x, %x, %x, %dy {chunk_len = 8 : i64} : (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x16x8xf32>) -> (tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>, tensor<1x1x32x8xf32>)
  return
}

// -----

func.func @f(%tok: tensor<2x12xi32>, %dy: tensor<2x12x6xf32>) {
  // expected-error @+1 {{'reformer.embedding_grad' op expects table_grad [V, d_model] of shape [?, 6], got [10, 5]}}
  %dt = reformer.embedding_grad %tok, %dy : (tensor<2x12xi32>, tensor<2x12x6xf32>) -> tensor<10x5xf32>
  return
}

// -----

func.func @f(%tok: tensor<2x12xi32>, %dy: tensor<2x10x6xf32>) {
  // expected-error @+1 {{'reformer.embedding_grad' op expects result_grad [B, L, d_model] of shape [2, 12, ?], got [2, 10, 6]}}
  %dt = reformer.embedding_grad %tok, %dy : (tensor<2x12xi32>, tensor<2x10x6xf32>) -> tensor<10x6xf32>
  return
}

// -----

func.func @f(%dy: tensor<2x12x6xf32>) {
  // expected-error @+1 {{'reformer.axial_pos_embedding_grad' op expects at least one axial weight gradient}}
  reformer.axial_pos_embedding_grad %dy : (tensor<2x12x6xf32>) -> ()
  return
}

// -----

func.func @f(%dy: tensor<2x12x6xf32>) {
  // expected-error @+1 {{'reformer.axial_pos_embedding_grad' op expects weight_grads with element type 'f32', got 'bf16'}}
  %a, %b = reformer.axial_pos_embedding_grad %dy : (tensor<2x12x6xf32>) -> (tensor<3x2xbf16>, tensor<4x4xf32>)
  return
}

// -----

func.func @f(%dy: tensor<2x12x6xf32>) {
  // expected-error @+1 {{'reformer.axial_pos_embedding_grad' op expects the axial shape to cover the sequence length 12, got 9 positions}}
  %a, %b = reformer.axial_pos_embedding_grad %dy : (tensor<2x12x6xf32>) -> (tensor<3x2xf32>, tensor<3x4xf32>)
  return
}

// -----

func.func @f(%dy: tensor<2x12x6xf32>) {
  // expected-error @+1 {{'reformer.axial_pos_embedding_grad' op expects the axial embedding widths to sum to d_model = 6, got 7}}
  %a, %b = reformer.axial_pos_embedding_grad %dy : (tensor<2x12x6xf32>) -> (tensor<3x3xf32>, tensor<4x4xf32>)
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{'reformer.clip_scale' op expects at least one gradient}}
  %s = reformer.clip_scale {max_norm = 1.0 : f64} : () -> tensor<f32>
  return
}

// -----

func.func @f(%g: tensor<4xf32>) {
  // expected-error @+1 {{'reformer.clip_scale' op expects a positive max_norm, got 0.000000e+00}}
  %s = reformer.clip_scale %g {max_norm = 0.0 : f64} : (tensor<4xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%w: tensor<4x8xf32>, %r: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects a v_col operand for a parameter of rank 2 (factored moments)}}
  %a, %b = reformer.adafactor_update %w, %w, %lr, %lr rows(%r) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, tensor<f32>, tensor<4xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%b: tensor<8xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects no v_col operand for a parameter of rank 1 (unfactored moments)}}
  %a, %c, %d = reformer.adafactor_update %b, %b, %lr, %lr rows(%b) cols(%b) : (tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<f32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%w: tensor<4x8xf32>, %r: tensor<8xf32>, %c: tensor<8xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects v_row of shape [4], got [8]}}
  %a, %b, %d = reformer.adafactor_update %w, %w, %lr, %lr rows(%r) cols(%c) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, tensor<f32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%w: tensor<4x8xf32>, %r: tensor<4xf32>, %c: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects v_col of shape [8], got [4]}}
  %a, %b, %d = reformer.adafactor_update %w, %w, %lr, %lr rows(%r) cols(%c) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%w: tensor<4x8xf32>, %r: tensor<4xf32>, %c: tensor<8xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects no new_v_col result without v_col}}
  %a, %b, %d = reformer.adafactor_update %c, %c, %lr, %lr rows(%c) : (tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<f32>, tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%w: tensor<4x8xf32>, %r: tensor<4xf32>, %c: tensor<8xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects a new_v_col result with v_col}}
  %a, %b = reformer.adafactor_update %w, %w, %lr, %lr rows(%r) cols(%c) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%c: tensor<8xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects a positive decay_rate, got 0.000000e+00}}
  %a, %b = reformer.adafactor_update %c, %c, %lr, %lr rows(%c) {decay_rate = 0.0 : f64} : (tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<f32>, tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%c: tensor<8xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{'reformer.adafactor_update' op expects a non-negative epsilon2, got -1.000000e+00}}
  %a, %b = reformer.adafactor_update %c, %c, %lr, %lr rows(%c) {epsilon2 = -1.0 : f64} : (tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<f32>, tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{'reformer.dropout' op expects a rate in [0, 1), got 1.000000e+00}}
  %a = reformer.dropout %x {rate = 1.0 : f64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{'reformer.dropout' op expects result of shape [2, 8], got [8, 2]}}
  %a = reformer.dropout %x {rate = 0.5 : f64} : (tensor<2x8xf32>) -> tensor<8x2xf32>
  return
}
