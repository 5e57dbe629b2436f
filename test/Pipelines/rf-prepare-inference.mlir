// RUN: reformer-model --preset=tiny | reformer-opt --rf-prepare-inference | FileCheck %s

// The pipeline leaves no reversible block and no high-level LSH attention,
// and drops nothing the model computes.
// CHECK-LABEL: func.func @forward
// CHECK-NOT: reformer.reversible
// CHECK-NOT: reformer.lsh_attention
// CHECK: reformer.embedding
// CHECK: reformer.axial_pos_embedding
// Layer 0 (local attention).
// CHECK: reformer.local_attention {{.*}} {causal, chunk_len = 32 : i64}
// CHECK: arith.addf
// CHECK: reformer.chunked_ffn
// CHECK: arith.addf
// Layer 1 (LSH attention), seeded with hash_seed + layer.
// CHECK: reformer.lsh_rotations {seed = 1 : i64} : tensor<2x32x2x4xf32>
// CHECK: reformer.lsh_hash
// CHECK: reformer.bucket_sort
// The unsorts are folded into the attention write.
// CHECK-NOT: reformer.unsort
// CHECK: reformer.sorted_chunk_attention {{.*}} {causal, chunk_len = 32 : i64, sequence_order}
// CHECK-NOT: reformer.unsort
// CHECK: reformer.combine_rounds
// CHECK: arith.addf
// CHECK: reformer.chunked_ffn
// CHECK: arith.addf
// CHECK: tensor.concat
// CHECK: reformer.layer_norm
// CHECK: reformer.dense
// CHECK-NOT: reformer.reversible
