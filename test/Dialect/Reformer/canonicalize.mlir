// RUN: reformer-opt %s --canonicalize --split-input-file | FileCheck %s

// A length mask that keeps every position is dropped.
// CHECK-LABEL: func.func @all_true_mask
// CHECK-NOT: reformer.length_mask
// CHECK: reformer.lsh_attention %{{.*}}, %{{.*}} {
// CHECK: reformer.local_attention %{{.*}}, %{{.*}}, %{{.*}} {
func.func @all_true_mask(%qk: tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) {
  %m = reformer.length_mask {length = 64 : i64} : tensor<1x64xi1>
  %0 = reformer.lsh_attention %qk, %qk mask(%m) {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x64xi1>) -> tensor<1x2x64x8xf32>
  %1 = reformer.local_attention %qk, %qk, %qk mask(%m) {chunk_len = 16 : i64}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x64xi1>) -> tensor<1x2x64x8xf32>
  return %0, %1 : tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>
}

// -----

// A mask that hides padding stays.
// CHECK-LABEL: func.func @padding_mask_kept
// CHECK: %[[M:.+]] = reformer.length_mask {length = 50 : i64}
// CHECK: reformer.lsh_attention %{{.*}}, %{{.*}} mask(%[[M]])
func.func @padding_mask_kept(%qk: tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32> {
  %m = reformer.length_mask {length = 50 : i64} : tensor<1x64xi1>
  %0 = reformer.lsh_attention %qk, %qk mask(%m) {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x64xi1>) -> tensor<1x2x64x8xf32>
  return %0 : tensor<1x2x64x8xf32>
}

// -----

// Training results nobody reads are not produced.
// CHECK-LABEL: func.func @unused_training_results
// CHECK: reformer.lsh_attention {{.*}} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32>
func.func @unused_training_results(%qk: tensor<1x2x64x8xf32>) -> tensor<1x2x64x8xf32> {
  %0:3 = reformer.lsh_attention %qk, %qk {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf32>, tensor<1x2x2x64xi32>)
  return %0#0 : tensor<1x2x64x8xf32>
}

// -----

// CHECK-LABEL: func.func @used_training_results
// CHECK: reformer.lsh_attention {{.*}} -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf32>, tensor<1x2x2x64xi32>)
func.func @used_training_results(%qk: tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>) {
  %0:3 = reformer.lsh_attention %qk, %qk {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, seed = 1 : i64}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>) -> (tensor<1x2x64x8xf32>, tensor<1x2x2x64xf32>, tensor<1x2x2x64xi32>)
  return %0#0, %0#2 : tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>
}

// -----

// One hash round: the combine only drops the round dimension.
// CHECK-LABEL: func.func @single_round
// CHECK-SAME: (%[[O:.+]]: tensor<1x2x1x64x8xf32>
// CHECK: %[[C:.+]] = tensor.collapse_shape %[[O]] {{\[}}[0], [1], [2, 3], [4]] : tensor<1x2x1x64x8xf32> into tensor<1x2x64x8xf32>
// CHECK: return %[[C]]
func.func @single_round(%o: tensor<1x2x1x64x8xf32>, %l: tensor<1x2x1x64xf32>) -> tensor<1x2x64x8xf32> {
  %0 = reformer.combine_rounds %o, %l : (tensor<1x2x1x64x8xf32>, tensor<1x2x1x64xf32>) -> tensor<1x2x64x8xf32>
  return %0 : tensor<1x2x64x8xf32>
}

// -----

// CHECK-LABEL: func.func @two_rounds
// CHECK: reformer.combine_rounds
func.func @two_rounds(%o: tensor<1x2x2x64x8xf32>, %l: tensor<1x2x2x64xf32>) -> tensor<1x2x64x8xf32> {
  %0 = reformer.combine_rounds %o, %l : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>) -> tensor<1x2x64x8xf32>
  return %0 : tensor<1x2x64x8xf32>
}

// -----

// Splitting and merging heads with the same layout cancel out.
// CHECK-LABEL: func.func @heads_round_trip
// CHECK-SAME: (%[[X:.+]]: tensor<1x64x32xf32>, %[[Y:.+]]: tensor<1x4x64x8xf32>)
// CHECK-NOT: reformer.split_heads
// CHECK-NOT: reformer.merge_heads
// CHECK: return %[[X]], %[[Y]]
func.func @heads_round_trip(%x: tensor<1x64x32xf32>, %y: tensor<1x4x64x8xf32>) -> (tensor<1x64x32xf32>, tensor<1x4x64x8xf32>) {
  %0 = reformer.split_heads %x : (tensor<1x64x32xf32>) -> tensor<1x4x64x8xf32>
  %1 = reformer.merge_heads %0 : (tensor<1x4x64x8xf32>) -> tensor<1x64x32xf32>
  %2 = reformer.merge_heads %y : (tensor<1x4x64x8xf32>) -> tensor<1x64x32xf32>
  %3 = reformer.split_heads %2 : (tensor<1x64x32xf32>) -> tensor<1x4x64x8xf32>
  return %1, %3 : tensor<1x64x32xf32>, tensor<1x4x64x8xf32>
}

// -----

// A different head layout is a real reshuffle and stays.
// CHECK-LABEL: func.func @heads_regrouped
// CHECK: reformer.merge_heads
// CHECK: reformer.split_heads
func.func @heads_regrouped(%y: tensor<1x4x64x8xf32>) -> tensor<1x2x64x16xf32> {
  %0 = reformer.merge_heads %y : (tensor<1x4x64x8xf32>) -> tensor<1x64x32xf32>
  %1 = reformer.split_heads %0 : (tensor<1x64x32xf32>) -> tensor<1x2x64x16xf32>
  return %1 : tensor<1x2x64x16xf32>
}

// -----

// Unsorting both attention results by the inverse of the same sort is folded
// into the attention's write (sequence order).
// CHECK-LABEL: func.func @fold_unsort
// CHECK: %[[P:.+]], %[[I:.+]] = reformer.bucket_sort
// CHECK: %[[O:.+]], %[[L:.+]] = reformer.sorted_chunk_attention {{.*}} {chunk_len = 16 : i64, sequence_order}
// CHECK-NOT: reformer.unsort
// CHECK: return %[[O]], %[[L]]
func.func @fold_unsort(%qk: tensor<1x2x64x8xf32>, %b: tensor<1x2x2x64xi32>)
    -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>) {
  %perm, %inv = reformer.bucket_sort %b {num_buckets = 8 : i64}
      : (tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64xi32>, tensor<1x2x2x64xi32>)
  %o, %l = reformer.sorted_chunk_attention %qk, %qk, %perm {chunk_len = 16 : i64}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>)
      -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  %ou = reformer.unsort %o, %inv : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64x8xf32>
  %lu = reformer.unsort %l, %inv : (tensor<1x2x2x64xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64xf32>
  return %ou, %lu : tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>
}

// -----

// A result read in sorted order keeps the sorted write.
// CHECK-LABEL: func.func @keep_sorted
// CHECK: reformer.sorted_chunk_attention {{.*}} {chunk_len = 16 : i64}
// CHECK: reformer.unsort
func.func @keep_sorted(%qk: tensor<1x2x64x8xf32>, %b: tensor<1x2x2x64xi32>)
    -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>) {
  %perm, %inv = reformer.bucket_sort %b {num_buckets = 8 : i64}
      : (tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64xi32>, tensor<1x2x2x64xi32>)
  %o, %l = reformer.sorted_chunk_attention %qk, %qk, %perm {chunk_len = 16 : i64}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>)
      -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  %ou = reformer.unsort %o, %inv : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64x8xf32>
  return %ou, %l : tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>
}

// -----

// Dropout without a seed (inference) and at rate 0 is the identity; a
// seeded dropout stays.
// CHECK-LABEL: func.func @dropout_folds
// CHECK-NEXT: %[[D:.+]] = reformer.dropout %arg0 seed(%arg1)
// CHECK-NEXT: return %arg0, %arg0, %[[D]]
func.func @dropout_folds(%x: tensor<4xf32>, %s: tensor<i64>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %a = reformer.dropout %x {rate = 0.1 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  %b = reformer.dropout %x seed(%s) {rate = 0.0 : f64} : (tensor<4xf32>, tensor<i64>) -> tensor<4xf32>
  %c = reformer.dropout %x seed(%s) {rate = 0.5 : f64} : (tensor<4xf32>, tensor<i64>) -> tensor<4xf32>
  return %a, %b, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
