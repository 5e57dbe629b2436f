// RUN: reformer-model --preset=tiny | reformer-opt --rf-prepare-inference | FileCheck %s
// RUN: reformer-model --preset=tiny --inline-layers | reformer-opt --rf-prepare-inference | FileCheck %s --check-prefix=INLINE

// The pipeline leaves no reversible block and no high-level LSH attention,
// and drops nothing the model computes; each kind of layer is prepared once,
// in its function.
// CHECK-LABEL: func.func @forward
// CHECK: %[[SEED:.+]] = arith.constant dense<1> : tensor<i64>
// CHECK: reformer.embedding
// CHECK: reformer.axial_pos_embedding
// CHECK: call @local_layer
// Layer 1 (LSH attention), its rotations seeded with hash_seed + layer.
// CHECK: call @lsh_layer({{.*}}, %[[SEED]])
// CHECK: tensor.concat
// CHECK: reformer.layer_norm
// CHECK: reformer.dense
// CHECK-LABEL: func.func private @local_layer
// CHECK-NOT: reformer.reversible
// CHECK: reformer.local_attention {{.*}} {causal, chunk_len = 32 : i64}
// CHECK: arith.addf
// CHECK: reformer.chunked_ffn
// CHECK: arith.addf
// CHECK-LABEL: func.func private @lsh_layer
// CHECK-NOT: reformer.lsh_attention
// CHECK: reformer.lsh_rotations seed(%{{.*}} : tensor<i64>) : tensor<2x32x2x4xf32>
// CHECK: reformer.lsh_hash
// CHECK: reformer.bucket_sort
// CHECK-NOT: reformer.unsort
// CHECK: reformer.sorted_chunk_attention {{.*}} {causal, chunk_len = 32 : i64, sequence_order}
// CHECK-NOT: reformer.unsort
// CHECK: reformer.combine_rounds
// CHECK: arith.addf
// CHECK: reformer.chunked_ffn
// CHECK: arith.addf
// CHECK-NOT: reformer.reversible
// CHECK-NOT: reformer.lsh_attention

// With --inline-layers, every layer in @forward:
// INLINE-LABEL: func.func @forward
// INLINE-NOT: reformer.reversible
// INLINE-NOT: reformer.lsh_attention
// INLINE: reformer.embedding
// INLINE: reformer.axial_pos_embedding
// Layer 0 (local attention).
// INLINE: reformer.local_attention {{.*}} {causal, chunk_len = 32 : i64}
// INLINE: arith.addf
// INLINE: reformer.chunked_ffn
// INLINE: arith.addf
// Layer 1 (LSH attention), seeded with hash_seed + layer.
// INLINE: reformer.lsh_rotations {seed = 1 : i64} : tensor<2x32x2x4xf32>
// INLINE: reformer.lsh_hash
// INLINE: reformer.bucket_sort
// The unsorts are folded into the attention write.
// INLINE-NOT: reformer.unsort
// INLINE: reformer.sorted_chunk_attention {{.*}} {causal, chunk_len = 32 : i64, sequence_order}
// INLINE-NOT: reformer.unsort
// INLINE: reformer.combine_rounds
// INLINE: arith.addf
// INLINE: reformer.chunked_ffn
// INLINE: arith.addf
// INLINE: tensor.concat
// INLINE: reformer.layer_norm
// INLINE: reformer.dense
// INLINE-NOT: reformer.reversible
