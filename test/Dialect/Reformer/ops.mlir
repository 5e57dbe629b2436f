// RUN: reformer-opt %s | FileCheck %s
// RUN: reformer-opt %s | reformer-opt | FileCheck %s
// RUN: reformer-opt -mlir-print-op-generic %s | reformer-opt | FileCheck %s

// CHECK-LABEL: func.func @lsh_attention_seeded
func.func @lsh_attention_seeded(%qk: tensor<2x4x128x16xf32>, %v: tensor<2x4x128x16xf32>) -> tensor<2x4x128x16xf32> {
  // CHECK: reformer.lsh_attention %{{.*}}, %{{.*}} {causal, chunk_len = 32 : i64, n_buckets = array<i64: 8>, n_hashes = 2 : i64, seed = 7 : i64} : (tensor<2x4x128x16xf32>, tensor<2x4x128x16xf32>) -> tensor<2x4x128x16xf32>
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 32 : i64, causal, seed = 7 : i64}
      : (tensor<2x4x128x16xf32>, tensor<2x4x128x16xf32>) -> tensor<2x4x128x16xf32>
  return %0 : tensor<2x4x128x16xf32>
}

// CHECK-LABEL: func.func @lsh_attention_training
func.func @lsh_attention_training(%qk: tensor<1x2x64x8xbf16>, %v: tensor<1x2x64x8xbf16>,
    %rot: tensor<2x8x4x6xbf16>, %mask: tensor<1x64xi1>)
    -> (tensor<1x2x64x8xbf16>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xi32>) {
  // CHECK: %{{.*}}, %{{.*}}:2 = reformer.lsh_attention %{{.*}}, %{{.*}} rotations(%{{.*}}) mask(%{{.*}}) {chunk_len = 16 : i64, chunks_after = 1 : i64, chunks_before = 2 : i64, duplicate_correction, n_buckets = array<i64: 4, 8>, n_hashes = 4 : i64}
  %o, %lse, %b = reformer.lsh_attention %qk, %v rotations(%rot) mask(%mask)
      {n_hashes = 4 : i64, n_buckets = array<i64: 4, 8>, chunk_len = 16 : i64,
       chunks_before = 2 : i64, chunks_after = 1 : i64, duplicate_correction}
      : (tensor<1x2x64x8xbf16>, tensor<1x2x64x8xbf16>, tensor<2x8x4x6xbf16>, tensor<1x64xi1>)
      -> (tensor<1x2x64x8xbf16>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xi32>)
  return %o, %lse, %b : tensor<1x2x64x8xbf16>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xi32>
}

// CHECK-LABEL: func.func @lsh_attention_dynamic
func.func @lsh_attention_dynamic(%qk: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32> {
  // CHECK: reformer.lsh_attention
  %0 = reformer.lsh_attention %qk, %v {n_hashes = 1 : i64, n_buckets = array<i64: 2>, chunk_len = 8 : i64, seed = 1 : i64}
      : (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32>
  return %0 : tensor<?x4x?x16xf32>
}

// CHECK-LABEL: func.func @local_attention
func.func @local_attention(%q: tensor<1x2x64x8xf32>, %mask: tensor<1x64xi1>) -> tensor<1x2x64x8xf32> {
  // CHECK: reformer.local_attention %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}}) {causal, chunk_len = 16 : i64} : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x64xi1>) -> tensor<1x2x64x8xf32>
  %0 = reformer.local_attention %q, %q, %q mask(%mask) {chunk_len = 16 : i64, causal}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x64xi1>) -> tensor<1x2x64x8xf32>
  return %0 : tensor<1x2x64x8xf32>
}

// CHECK-LABEL: func.func @lsh_steps
func.func @lsh_steps(%qk: tensor<1x2x64x8xf32>, %v: tensor<1x2x64x8xf32>, %mask: tensor<1x64xi1>) -> tensor<1x2x64x8xf32> {
  // CHECK: %[[ROT:.+]] = reformer.lsh_rotations {seed = 3 : i64} : tensor<2x8x2x4xf32>
  %rot = reformer.lsh_rotations {seed = 3 : i64} : tensor<2x8x2x4xf32>
  // CHECK: reformer.lsh_rotations seed(%{{.*}} : tensor<i64>) : tensor<2x8x2x4xf32>
  %seed = arith.constant dense<3> : tensor<i64>
  %rot2 = reformer.lsh_rotations seed(%seed : tensor<i64>) : tensor<2x8x2x4xf32>
  // CHECK: %[[B:.+]] = reformer.lsh_hash %{{.*}}, %[[ROT]] {n_buckets = array<i64: 8>}
  %b = reformer.lsh_hash %qk, %rot {n_buckets = array<i64: 8>}
      : (tensor<1x2x64x8xf32>, tensor<2x8x2x4xf32>) -> tensor<1x2x2x64xi32>
  // CHECK: %[[P:.+]], %[[I:.+]] = reformer.bucket_sort %[[B]] {num_buckets = 8 : i64}
  %perm, %inv = reformer.bucket_sort %b {num_buckets = 8 : i64}
      : (tensor<1x2x2x64xi32>) -> (tensor<1x2x2x64xi32>, tensor<1x2x2x64xi32>)
  // CHECK: reformer.sorted_chunk_attention %{{.*}}, %{{.*}}, %[[P]] inverse(%[[I]]) mask(%{{.*}}) {causal, chunk_len = 16 : i64, duplicate_correction}
  %o, %lse = reformer.sorted_chunk_attention %qk, %v, %perm inverse(%inv) mask(%mask)
      {chunk_len = 16 : i64, causal, duplicate_correction}
      : (tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x2x64xi32>, tensor<1x2x2x64xi32>, tensor<1x64xi1>)
      -> (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>)
  // CHECK: reformer.unsort %{{.*}}, %[[I]] : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64x8xf32>
  %ou = reformer.unsort %o, %inv : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64x8xf32>
  // CHECK: reformer.unsort %{{.*}}, %[[I]] : (tensor<1x2x2x64xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64xf32>
  %lu = reformer.unsort %lse, %inv : (tensor<1x2x2x64xf32>, tensor<1x2x2x64xi32>) -> tensor<1x2x2x64xf32>
  // CHECK: reformer.combine_rounds
  %r = reformer.combine_rounds %ou, %lu : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>) -> tensor<1x2x64x8xf32>
  return %r : tensor<1x2x64x8xf32>
}

// CHECK-LABEL: func.func @length_mask
func.func @length_mask() -> tensor<2x64xi1> {
  // CHECK: reformer.length_mask {length = 50 : i64} : tensor<2x64xi1>
  %m = reformer.length_mask {length = 50 : i64} : tensor<2x64xi1>
  return %m : tensor<2x64xi1>
}

// CHECK-LABEL: func.func @reversible
func.func @reversible(%x1: tensor<1x64x32xf32>, %x2: tensor<1x64x32xf32>,
    %g: tensor<32xf32>, %b: tensor<32xf32>, %w1: tensor<32x128xf32>, %b1: tensor<128xf32>,
    %w2: tensor<128x32xf32>, %b2: tensor<32xf32>) -> (tensor<1x64x32xf32>, tensor<1x64x32xf32>) {
  // CHECK: %{{.*}}, %{{.*}} = reformer.reversible %{{.*}}, %{{.*}} : tensor<1x64x32xf32> f {
  // CHECK-NEXT: ^bb0(%[[A:.+]]: tensor<1x64x32xf32>):
  // CHECK: reformer.yield %{{.*}} : tensor<1x64x32xf32>
  // CHECK-NEXT: } g {
  // CHECK: reformer.chunked_ffn %{{.*}} {activation = #reformer.activation<gelu>, chunk = 16 : i64}
  %y1, %y2 = reformer.reversible %x1, %x2 : tensor<1x64x32xf32> f {
  ^bb0(%a: tensor<1x64x32xf32>):
    %n = reformer.layer_norm %a, %g, %b {epsilon = 1.0e-12 : f64}
        : (tensor<1x64x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
    reformer.yield %n : tensor<1x64x32xf32>
  } g {
  ^bb0(%a: tensor<1x64x32xf32>):
    %n = reformer.chunked_ffn %a, %w1, %b1, %w2, %b2 {chunk = 16 : i64, activation = #reformer.activation<gelu>}
        : (tensor<1x64x32xf32>, tensor<32x128xf32>, tensor<128xf32>, tensor<128x32xf32>, tensor<32xf32>) -> tensor<1x64x32xf32>
    reformer.yield %n : tensor<1x64x32xf32>
  }
  return %y1, %y2 : tensor<1x64x32xf32>, tensor<1x64x32xf32>
}

// CHECK-LABEL: func.func @around_the_blocks
func.func @around_the_blocks(%tok: tensor<2x100xi32>, %table: tensor<256x32xf32>,
    %e0: tensor<8x12xf32>, %e1: tensor<16x20xf32>, %w: tensor<32x256xf32>, %bias: tensor<256xf32>,
    %wqk: tensor<32x32xf32>) -> (tensor<f32>, tensor<2x100x32xf32>) {
  // CHECK: reformer.embedding %{{.*}}, %{{.*}} : (tensor<2x100xi32>, tensor<256x32xf32>) -> tensor<2x100x32xf32>
  %x = reformer.embedding %tok, %table : (tensor<2x100xi32>, tensor<256x32xf32>) -> tensor<2x100x32xf32>
  // CHECK: reformer.axial_pos_embedding %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x100x32xf32>, tensor<8x12xf32>, tensor<16x20xf32>) -> tensor<2x100x32xf32>
  %p = reformer.axial_pos_embedding %x, %e0, %e1
      : (tensor<2x100x32xf32>, tensor<8x12xf32>, tensor<16x20xf32>) -> tensor<2x100x32xf32>
  // CHECK: reformer.dense %{{.*}}, %{{.*}} : (tensor<2x100x32xf32>, tensor<32x32xf32>) -> tensor<2x100x32xf32>
  %qk = reformer.dense %p, %wqk : (tensor<2x100x32xf32>, tensor<32x32xf32>) -> tensor<2x100x32xf32>
  // CHECK: reformer.split_heads %{{.*}} : (tensor<2x100x32xf32>) -> tensor<2x4x100x8xf32>
  %h = reformer.split_heads %qk : (tensor<2x100x32xf32>) -> tensor<2x4x100x8xf32>
  %s = arith.negf %h : tensor<2x4x100x8xf32>
  // CHECK: reformer.merge_heads %{{.*}} : (tensor<2x4x100x8xf32>) -> tensor<2x100x32xf32>
  %m = reformer.merge_heads %s : (tensor<2x4x100x8xf32>) -> tensor<2x100x32xf32>
  // CHECK: reformer.dense %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x100x32xf32>, tensor<32x256xf32>, tensor<256xf32>) -> tensor<2x100x256xf32>
  %logits = reformer.dense %m, %w, %bias : (tensor<2x100x32xf32>, tensor<32x256xf32>, tensor<256xf32>) -> tensor<2x100x256xf32>
  // CHECK: reformer.softmax_cross_entropy %{{.*}}, %{{.*}} : (tensor<2x100x256xf32>, tensor<2x100xi32>) -> tensor<f32>
  %loss = reformer.softmax_cross_entropy %logits, %tok : (tensor<2x100x256xf32>, tensor<2x100xi32>) -> tensor<f32>
  return %loss, %m : tensor<f32>, tensor<2x100x32xf32>
}

// CHECK-LABEL: func.func @weighted_loss
func.func @weighted_loss(%logits: tensor<1x8x16xf32>, %t: tensor<1x8xi64>, %w: tensor<1x8xf32>) -> tensor<f32> {
  // CHECK: reformer.softmax_cross_entropy %{{.*}}, %{{.*}} weights(%{{.*}})
  %l = reformer.softmax_cross_entropy %logits, %t weights(%w) : (tensor<1x8x16xf32>, tensor<1x8xi64>, tensor<1x8xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// Gradients and optimizer updates.
// CHECK-LABEL: func.func @training_ops
func.func @training_ops(%x: tensor<2x8x16xbf16>, %w: tensor<16x32xf32>, %dy: tensor<2x8x32xf32>,
                        %g: tensor<16xf32>, %dn: tensor<2x8x16xf32>, %logits: tensor<2x8x32xf32>,
                        %tok: tensor<2x8xi32>, %wt: tensor<2x8xf32>, %m: tensor<16x32xf32>,
                        %lr: tensor<f32>, %step: tensor<f32>) {
  // CHECK: reformer.dense_grad %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x8x16xbf16>, tensor<16x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>)
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<2x8x16xbf16>, tensor<16x32xf32>, tensor<2x8x32xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>)
  // CHECK: reformer.layer_norm_grad %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f64} : (tensor<2x8x16xbf16>, tensor<16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  %lx, %lg, %lb = reformer.layer_norm_grad %x, %g, %dn {epsilon = 1.0e-5 : f64} : (tensor<2x8x16xbf16>, tensor<16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  // CHECK: reformer.softmax_cross_entropy_grad %{{.*}}, %{{.*}} weights(%{{.*}}) : (tensor<2x8x32xf32>, tensor<2x8xi32>, tensor<2x8xf32>) -> tensor<2x8x32xf32>
  %dl = reformer.softmax_cross_entropy_grad %logits, %tok weights(%wt) : (tensor<2x8x32xf32>, tensor<2x8xi32>, tensor<2x8xf32>) -> tensor<2x8x32xf32>
  // CHECK: reformer.adam_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {beta2 = 7.500000e-01 : f64, epsilon = 1.000000e-09 : f64} : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<f32>) -> (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>)
  %p2, %m2, %v2 = reformer.adam_update %w, %dw, %m, %m, %lr, %step {beta2 = 0.75 : f64, epsilon = 1.0e-9 : f64} : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<f32>) -> (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>)
  return
}

// CHECK-LABEL: func.func @chunked_ffn_grad
func.func @chunked_ffn_grad(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>,
                            %w2: tensor<32x16xf32>, %dy: tensor<2x8x16xf32>) {
  // CHECK: reformer.chunked_ffn_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {activation = #reformer.activation<gelu>, chunk = 4 : i64} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  %dx, %dw1, %db1, %dw2, %db2 = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 4 : i64, activation = #reformer.activation<gelu>} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>)
  return
}

// CHECK-LABEL: func.func @attention_grads
func.func @attention_grads(%qk: tensor<1x2x32x8xbf16>, %out: tensor<1x2x32x8xbf16>, %dy: tensor<1x2x32x8xf32>,
                           %lse: tensor<1x2x2x32xf32>, %buckets: tensor<1x2x2x32xi32>, %mask: tensor<1x32xi1>) {
  // CHECK: reformer.lsh_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} lse(%{{.*}}) buckets(%{{.*}}) mask(%{{.*}}) {causal, chunk_len = 8 : i64, n_buckets = array<i64: 4, 2>} : (tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xf32>, tensor<1x2x2x32xf32>, tensor<1x2x2x32xi32>, tensor<1x32xi1>) -> (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>)
  %dqk, %dv = reformer.lsh_attention_grad %qk, %qk, %out, %dy lse(%lse) buckets(%buckets) mask(%mask) {n_buckets = array<i64: 4, 2>, chunk_len = 8 : i64, causal} : (tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xf32>, tensor<1x2x2x32xf32>, tensor<1x2x2x32xi32>, tensor<1x32xi1>) -> (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>)
  // CHECK: reformer.local_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {chunk_len = 8 : i64, chunks_after = 1 : i64} : (tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xf32>) -> (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>)
  %dq, %dk, %dv2 = reformer.local_attention_grad %qk, %qk, %qk, %dy {chunk_len = 8 : i64, chunks_after = 1 : i64} : (tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xbf16>, tensor<1x2x32x8xf32>) -> (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>)
  return
}

// CHECK-LABEL: func.func @embedding_grads
func.func @embedding_grads(%tok: tensor<2x12xi32>, %dy: tensor<2x12x6xbf16>) {
  // CHECK: reformer.embedding_grad %{{.*}}, %{{.*}} : (tensor<2x12xi32>, tensor<2x12x6xbf16>) -> tensor<10x6xf32>
  %dt = reformer.embedding_grad %tok, %dy : (tensor<2x12xi32>, tensor<2x12x6xbf16>) -> tensor<10x6xf32>
  // CHECK: reformer.axial_pos_embedding_grad %{{.*}} : (tensor<2x12x6xbf16>) -> (tensor<3x2xf32>, tensor<4x4xf32>)
  %d0, %d1 = reformer.axial_pos_embedding_grad %dy : (tensor<2x12x6xbf16>) -> (tensor<3x2xf32>, tensor<4x4xf32>)
  return
}

// CHECK-LABEL: func.func @clipped_adam
func.func @clipped_adam(%p: tensor<16xf32>, %g: tensor<16xf32>, %h: tensor<4x4xf32>, %lr: tensor<f32>) {
  // CHECK: %[[S:.+]] = reformer.clip_scale %{{.*}}, %{{.*}} {max_norm = 1.000000e+00 : f64} : (tensor<16xf32>, tensor<4x4xf32>) -> tensor<f32>
  %s = reformer.clip_scale %g, %h {max_norm = 1.0 : f64} : (tensor<16xf32>, tensor<4x4xf32>) -> tensor<f32>
  // CHECK: reformer.adam_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} scale(%[[S]]) : (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<f32>, tensor<f32>, tensor<f32>)
  %a, %b, %c = reformer.adam_update %p, %g, %p, %p, %lr, %lr scale(%s) : (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<f32>, tensor<f32>, tensor<f32>) -> (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>)
  return
}

// CHECK-LABEL: func.func @adafactor
func.func @adafactor(%w: tensor<4x8xf32>, %b: tensor<8xf32>, %r: tensor<4xf32>, %lr: tensor<f32>) {
  // CHECK: reformer.adafactor_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} rows(%{{.*}}) cols(%{{.*}}) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>)
  %w2, %r2, %c2 = reformer.adafactor_update %w, %w, %lr, %lr rows(%r) cols(%b) {decay_rate = 0.8 : f64, epsilon2 = 1.0e-3 : f64} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>)
  // CHECK: reformer.adafactor_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} rows(%{{.*}}) scale(%{{.*}}) : (tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<f32>, tensor<8xf32>, tensor<f32>) -> (tensor<8xf32>, tensor<8xf32>)
  %b2, %v2 = reformer.adafactor_update %b, %b, %lr, %lr rows(%b) scale(%lr) : (tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<f32>, tensor<8xf32>, tensor<f32>) -> (tensor<8xf32>, tensor<8xf32>)
  return
}

// CHECK-LABEL: func.func @dropout
func.func @dropout(%x: tensor<2x8xf32>, %s: tensor<i64>) {
  // CHECK: reformer.dropout %{{.*}} {rate = 1.000000e-01 : f64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %a = reformer.dropout %x {rate = 0.1 : f64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  // CHECK: reformer.dropout %{{.*}} seed(%{{.*}}) {rate = 1.000000e-01 : f64, salt = 3 : i64} : (tensor<2x8xf32>, tensor<i64>) -> tensor<2x8xf32>
  %b = reformer.dropout %x seed(%s) {rate = 0.1 : f64, salt = 3 : i64} : (tensor<2x8xf32>, tensor<i64>) -> tensor<2x8xf32>
  return
}
