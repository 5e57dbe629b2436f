// RUN: reformer-opt %s --rf-convert-reformer-to-linalg --split-input-file --verify-diagnostics | FileCheck %s
// RUN: reformer-opt %s --rf-convert-reformer-to-linalg="max-block-run=1 vector-lanes=4 grad-block-run=2 sort-tiles=4" --split-input-file --verify-diagnostics --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s --check-prefix=RUN1
// RUN: reformer-opt %s --rf-convert-reformer-to-linalg="outline-attention=1" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=OUTLINE
// RUN: reformer-opt %s --rf-convert-reformer-to-linalg --cse --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=READS
// RUN: not reformer-opt %s --rf-convert-reformer-to-linalg="vector-lanes=3" --split-input-file 2>&1 | FileCheck %s --check-prefix=LANES
// LANES: error: rf-convert-reformer-to-linalg: vector-lanes must be a power of two from 1 to 64, got 3
// RUN: not reformer-opt %s --rf-convert-reformer-to-linalg="sort-tiles=0" --split-input-file 2>&1 | FileCheck %s --check-prefix=TILES
// TILES: error: rf-convert-reformer-to-linalg: sort-tiles must be 1 or more, got 0
// RUN: not reformer-opt %s --rf-convert-reformer-to-linalg="grad-block-run=-1" --split-input-file 2>&1 | FileCheck %s --check-prefix=GRADBLOCK
// GRADBLOCK: error: rf-convert-reformer-to-linalg: grad-block-run must be 0 or more, got -1

// The chunked FFN is a parallel loop over row chunks whose body holds both
// matmuls; 74 rows in chunks of 16: four full chunks in the loop, a 10-row
// remainder after it.
// CHECK-LABEL: func.func @ffn
// CHECK: scf.forall (%[[I:.*]]) in (4) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<74x16xf32>)
// CHECK: %[[ROW:.*]] = arith.muli %[[I]], %c16
// CHECK: tensor.extract_slice {{.*}}[%[[ROW]], 0] [16, 16] [1, 1] : tensor<74x16xf32> to tensor<16x16xf32>
// CHECK: linalg.matmul {{.*}} -> tensor<16x24xf32>
// CHECK: math.erf
// CHECK: linalg.matmul {{.*}} -> tensor<16x16xf32>
// CHECK: scf.forall.in_parallel
// CHECK-NEXT: tensor.parallel_insert_slice {{.*}} into %[[OUT]][%[[ROW]], 0] [16, 16] [1, 1]
// CHECK: tensor.extract_slice {{.*}}[64, 0] [10, 16] [1, 1]
// CHECK: tensor.insert_slice {{.*}}[64, 0] [10, 16] [1, 1]
// CHECK-NOT: = reformer.
func.func @ffn(%x: tensor<2x37x16xf32>, %w1: tensor<16x24xf32>, %b1: tensor<24xf32>,
               %w2: tensor<24x16xf32>, %b2: tensor<16xf32>) -> tensor<2x37x16xf32> {
  %y = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 16 : i64, activation = #reformer.activation<gelu>}
      : (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>, tensor<24x16xf32>, tensor<16xf32>) -> tensor<2x37x16xf32>
  return %y : tensor<2x37x16xf32>
}

// -----

// LSH attention: decomposed, then each step lowered. Hashing is a
// parallel loop over (batch·head, block of rows), each block a [rows, D] ×
// [D, R·K] matmul into scratch reduced to buckets at once; the sort a
// counting sort per round;
// the attention a parallel loop over (batch, head, run of query chunks;
// all 8 chunks of a head here) whose scratch is a c × W·c score block
// (16 × 32 here), never L × L. Each block gathers one new key chunk into
// the ring (16 × 16 register transposes into the 16 × 32 key buffer) and
// prefetches the rows of the next one.
// CHECK-LABEL: func.func @lsh
// CHECK: scf.parallel
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<64x8xf32>
// CHECK: linalg.matmul ins({{.*}} : memref<64x16xf32, strided<[16, 1], offset: ?>>, memref<16x8xf32, strided<[8, 1], offset: ?>>) outs({{.*}} : memref<64x8xf32>)
// CHECK: scf.parallel
// CHECK: memref.alloc() : memref<8xindex>
// CHECK: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = ({{.*}}) to (%c1{{.*}}, %c2{{.*}}, %c1{{.*}})
// CHECK-DAG: memref.alloc() {alignment = 64 : i64} : memref<16x32xf32>
// CHECK-DAG: memref.alloc() {alignment = 64 : i64} : memref<16x16xf32>
// CHECK: scf.for
// CHECK: vector.transpose {{.*}} [1, 0] : vector<16x16xf32> to vector<16x16xf32>
// CHECK: vector.transfer_write {{.*}} : vector<16x16xf32>, memref<16x32xf32>
// CHECK: memref.prefetch {{.*}}, read, locality<2>, data
// Scores: a fused kernel, 8 query rows × 2 key vectors of accumulators,
// masked and max-reduced before the store; then exp and P·V.
// CHECK: scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK: vector.fma
// CHECK: arith.maximumf {{.*}} fastmath<reassoc,nnan,nsz> : vector<16xf32>
// CHECK: vector.reduction <maximumf>, {{.*}} fastmath<reassoc,nnan,nsz>
// CHECK: math.exp {{.*}} : vector<16xf32>
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<16x32xf32>, memref<32x16xf32>) outs(%{{.*}} : memref<16x16xf32>)
// The round combine: one elementwise pass, each round an operand of its own.
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins({{.*}} : tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>) outs({{.*}} : tensor<1x2x64x16xf32>)
// CHECK-NOT: = reformer.
// With max-block-run=1 (the GPU pipeline) each of the 8 query chunks is a
// parallel iteration of its own; with vector-lanes=4 the register tiles
// are 4 × 4 and the score accumulators vector<4xf32>. The loop is named
// lsh_attention (its GPU kernel takes the name).
// With sort-tiles=4 the counting sort zeroes its counts, then takes a
// histogram per (batch, head, round, tile of 16 positions); the exclusive scan in (bucket, tile) order
// is a scan over tiles per bucket, one over the 8 bucket totals per
// (batch, head, round), and the bases added per (bucket, tile); then a
// scatter per tile.
// RUN1-LABEL: func.func @lsh
// RUN1: %[[COUNTS:.*]] = memref.alloc() : memref<1x2x2x8x4xindex>
// RUN1: scf.parallel ({{[^,]*}}, {{[^,]*}}, {{[^,]*}}, {{[^,]*}}, {{[^,]*}}) = ({{.*}}) to (%c1{{[_0-9]*}}, %c2{{[_0-9]*}}, %c2{{[_0-9]*}}, %c8{{[_0-9]*}}, %c4{{[_0-9]*}})
// RUN1: scf.parallel ({{[^,]*}}, {{[^,]*}}, {{[^,]*}}, {{[^,]*}}) = ({{.*}}) to (%c1{{[_0-9]*}}, %c2{{[_0-9]*}}, %c2{{[_0-9]*}}, %c4{{[_0-9]*}})
// RUN1: memref.store {{.*}}, %[[COUNTS]]
// RUN1: %[[TOTALS:.*]] = memref.alloc() : memref<1x2x2x8xindex>
// RUN1: scf.parallel ({{[^,]*}}, {{[^,]*}}, {{[^,]*}}, {{[^,]*}}) = ({{.*}}) to (%c1{{[_0-9]*}}, %c2{{[_0-9]*}}, %c2{{[_0-9]*}}, %c8{{[_0-9]*}})
// RUN1: scf.for {{.*}} to %c4
// RUN1: memref.store {{.*}}, %[[TOTALS]]
// RUN1: scf.parallel ({{[^,]*}}, {{[^,]*}}, {{[^,]*}}) = ({{.*}}) to (%c1{{[_0-9]*}}, %c2{{[_0-9]*}}, %c2{{[_0-9]*}})
// RUN1: scf.for {{.*}} to %c8
// RUN1: scf.parallel ({{[^,]*}}, {{[^,]*}}, {{[^,]*}}, {{[^,]*}}, {{[^,]*}}) = ({{.*}}) to (%c1{{[_0-9]*}}, %c2{{[_0-9]*}}, %c2{{[_0-9]*}}, %c8{{[_0-9]*}}, %c4{{[_0-9]*}})
// RUN1: scf.parallel ({{[^,]*}}, {{[^,]*}}, {{[^,]*}}, {{[^,]*}}) = ({{.*}}) to (%c1{{[_0-9]*}}, %c2{{[_0-9]*}}, %c2{{[_0-9]*}}, %c4{{[_0-9]*}})
// RUN1: memref.store {{.*}}, %[[COUNTS]]
// RUN1: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = ({{.*}}) to (%c1{{.*}}, %c2{{.*}}, %c8{{.*}})
// RUN1: vector.transpose {{.*}} [1, 0] : vector<4x4xf32> to vector<4x4xf32>
// RUN1: vector.fma {{.*}} : vector<4xf32>
// RUN1: math.exp {{.*}} : vector<4xf32>
// RUN1: } loc("lsh_attention"(
func.func @lsh(%qk: tensor<1x2x64x16xf32>, %v: tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32> {
  %o = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, causal, seed = 1 : i64}
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  return %o : tensor<1x2x64x16xf32>
}

// -----

// With outline-attention=1 the blocks of an LSH or local attention are a
// private function of its buffers, tagged with their parameters and called
// in their place (the GPU pipeline replaces its body with the fused
// kernel); LSH attention with duplicate correction stays inline.
// OUTLINE-LABEL: func.func @lsh_outlined
// OUTLINE: call @[[BLOCKS:lsh_outlined_lsh_attention_[0-9]+]](%{{.*}}) : (memref<1x2x64x16xf32>, memref<1x2x64x16xf32>, memref<1x2x2x64xi32>, memref<1x64xi1>, memref<1x2x2x64x16xf32>, memref<1x2x2x64xf32>) -> ()
// OUTLINE-LABEL: func.func @lsh_duplicates
// OUTLINE-NOT: call
// OUTLINE: scf.parallel
// OUTLINE: func.func private @[[BLOCKS]]({{.*}}) attributes {reformer.lsh_attention_block = {causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64, chunks_before = 1 : i64, key_norm_eps = {{.*}} : f64, masked_score = -1.000000e+09 : f64, self_score = -1.000000e+05 : f64, sequence_order = false}}
// OUTLINE: scf.parallel
// OUTLINE: return
func.func @lsh_outlined(%qk: tensor<1x2x64x16xf32>, %v: tensor<1x2x64x16xf32>, %mask: tensor<1x64xi1>) -> tensor<1x2x64x16xf32> {
  %o = reformer.lsh_attention %qk, %v mask(%mask) {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, causal, seed = 1 : i64}
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x64xi1>) -> tensor<1x2x64x16xf32>
  return %o : tensor<1x2x64x16xf32>
}
func.func @lsh_duplicates(%qk: tensor<1x2x64x16xf32>, %v: tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32> {
  %o = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, causal, duplicate_correction, seed = 1 : i64}
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  return %o : tensor<1x2x64x16xf32>
}

// -----

// OUTLINE-LABEL: func.func @local_outlined
// OUTLINE: call @[[LOCAL:local_outlined_local_attention_[0-9]+]](%{{.*}}) : (memref<1x2x64x16xf32>, memref<1x2x64x16xf32>, memref<1x2x64x16xf32>, memref<1x2x64x16xf32>) -> ()
// OUTLINE: func.func private @[[LOCAL]]({{.*}}) attributes {reformer.local_attention_block = {causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64, chunks_before = 1 : i64, masked_score = -1.000000e+09 : f64}}
// OUTLINE: scf.parallel
func.func @local_outlined(%q: tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32> {
  %o = reformer.local_attention %q, %q, %q {chunk_len = 16 : i64, chunks_before = 1 : i64, chunks_after = 0 : i64, causal}
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  return %o : tensor<1x2x64x16xf32>
}

// -----

// CHECK-LABEL: func.func @heads
// CHECK: tensor.expand_shape {{.*}} into tensor<1x8x4x16xf32>
// CHECK: linalg.transpose {{.*}} permutation = [0, 2, 1, 3]
// CHECK: linalg.transpose {{.*}} permutation = [0, 2, 1, 3]
// CHECK: tensor.collapse_shape {{.*}} into tensor<1x8x64xf32>
func.func @heads(%x: tensor<1x8x64xf32>) -> tensor<1x8x64xf32> {
  %h = reformer.split_heads %x : (tensor<1x8x64xf32>) -> tensor<1x4x8x16xf32>
  %n = arith.negf %h : tensor<1x4x8x16xf32>
  %m = reformer.merge_heads %n : (tensor<1x4x8x16xf32>) -> tensor<1x8x64xf32>
  return %m : tensor<1x8x64xf32>
}

// -----

// Reversible blocks are inlined on the way; the residual adds stay
// elementwise arith for convert-elementwise-to-linalg.
// CHECK-LABEL: func.func @block
// CHECK-NOT: = reformer.
// CHECK: arith.addf {{.*}} : tensor<1x8x4xf32>
func.func @block(%x: tensor<1x8x4xf32>, %g: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<1x8x4xf32> {
  %y1, %y2 = reformer.reversible %x, %x : tensor<1x8x4xf32> f {
  ^bb0(%a: tensor<1x8x4xf32>):
    %n = reformer.layer_norm %a, %g, %b : (tensor<1x8x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x8x4xf32>
    reformer.yield %n : tensor<1x8x4xf32>
  } g {
  ^bb0(%a: tensor<1x8x4xf32>):
    reformer.yield %a : tensor<1x8x4xf32>
  }
  return %y2 : tensor<1x8x4xf32>
}

// -----

func.func @dynamic(%x: tensor<?x8x64xf32>, %w: tensor<64x64xf32>) -> tensor<?x8x64xf32> {
  // expected-error @+1 {{failed to legalize operation 'reformer.dense'}}
  %y = reformer.dense %x, %w : (tensor<?x8x64xf32>, tensor<64x64xf32>) -> tensor<?x8x64xf32>
  return %y : tensor<?x8x64xf32>
}

// -----

// Heads split off [B, L, H·D] projections are read in place by hashing and
// the attention blocks: a strided view (memref.reinterpret_cast, which
// buffer liveness analyses follow), no transposed copy.
// (The transpose split_heads lowered to is left dead, for canonicalize.)
// CHECK-LABEL: func.func @split_then_attend
// CHECK: memref.reinterpret_cast %{{.*}} to offset: [0], sizes: [1, 2, 64, 16], strides: [2048, 16, 32, 1] : memref<1x64x32xf32> to memref<1x2x64x16xf32, strided<[2048, 16, 32, 1]>>
// Hashing reads rows 32 floats (H·D) apart.
// CHECK: linalg.matmul ins({{.*}} : memref<64x16xf32, strided<[32, 1], offset: ?>>
func.func @split_then_attend(%x: tensor<1x64x32xf32>) -> tensor<1x2x64x16xf32> {
  %h = reformer.split_heads %x : (tensor<1x64x32xf32>) -> tensor<1x2x64x16xf32>
  %o = reformer.lsh_attention %h, %h {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 16 : i64, causal, seed = 1 : i64}
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  return %o : tensor<1x2x64x16xf32>
}

// -----

// The round combine (one elementwise pass, a operand per round) writes
// [B, L, H, D] itself when its heads are merged next: merge_heads becomes
// a reshape, with no transposed copy.
// CHECK-LABEL: func.func @combine_then_merge
// CHECK: %[[C:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins({{.*}} : tensor<1x2x64x8xf32>, tensor<1x2x64x8xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>) outs({{.*}} : tensor<1x64x2x8xf32>)
// CHECK: tensor.collapse_shape %[[C]] {{.*}} into tensor<1x64x16xf32>
// CHECK-NOT: linalg.transpose
func.func @combine_then_merge(%o: tensor<1x2x2x64x8xf32>, %l: tensor<1x2x2x64xf32>) -> tensor<1x64x16xf32> {
  %r = reformer.combine_rounds %o, %l : (tensor<1x2x2x64x8xf32>, tensor<1x2x2x64xf32>) -> tensor<1x2x64x8xf32>
  %m = reformer.merge_heads %r : (tensor<1x2x64x8xf32>) -> tensor<1x64x16xf32>
  return %m : tensor<1x64x16xf32>
}

// -----

// dense_grad: rows collapsed; dx = dy·Wᵀ and dW = xᵀ·dy as linalg.matmul on
// materialized transposes (the vectorized kernels read rows), db a column
// sum.
// CHECK-LABEL: func.func @dense_grad
// CHECK-DAG: %[[X:.+]] = tensor.collapse_shape %arg0 {{\[}}[0, 1], [2]] : tensor<2x5x6xf32> into tensor<10x6xf32>
// CHECK-DAG: %[[DY:.+]] = tensor.collapse_shape %arg2 {{\[}}[0, 1], [2]] : tensor<2x5x7xf32> into tensor<10x7xf32>
// CHECK: %[[WT:.+]] = linalg.transpose ins(%arg1 : tensor<6x7xf32>) outs(%{{.*}} : tensor<7x6xf32>) permutation = [1, 0]
// CHECK: %[[DX:.+]] = linalg.matmul ins(%[[DY]], %[[WT]] : tensor<10x7xf32>, tensor<7x6xf32>)
// CHECK: %[[XT:.+]] = linalg.transpose ins(%[[X]] : tensor<10x6xf32>) outs(%{{.*}} : tensor<6x10xf32>)
// CHECK: %[[DW:.+]] = linalg.matmul ins(%[[XT]], %[[DY]] : tensor<6x10xf32>, tensor<10x7xf32>)
// CHECK: %[[DB:.+]] = linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]} ins(%[[DY]] : tensor<10x7xf32>)
// CHECK: %[[DX3:.+]] = tensor.expand_shape %[[DX]]
// CHECK: return %[[DX3]], %[[DW]], %[[DB]]
func.func @dense_grad(%x: tensor<2x5x6xf32>, %w: tensor<6x7xf32>, %dy: tensor<2x5x7xf32>) -> (tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<7xf32>) {
  %dx, %dw, %db = reformer.dense_grad %x, %w, %dy : (tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<2x5x7xf32>) -> (tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<7xf32>)
  return %dx, %dw, %db : tensor<2x5x6xf32>, tensor<6x7xf32>, tensor<7xf32>
}

// -----

// layer_norm_grad: the forward's statistics recomputed (two row reductions),
// one row reduction with two results (Σg, Σg·x̂), the elementwise input
// gradient, and one reduction over the rows for gamma and beta together.
// CHECK-LABEL: func.func @layer_norm_grad
// CHECK-COUNT-2: iterator_types = ["parallel", "parallel", "reduction"]} ins(%arg0
// CHECK: math.rsqrt
// CHECK: %[[SUMS:.+]]:2 = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%arg0, %{{.*}}, %{{.*}}, %arg1, %arg2 :
// CHECK: %[[DX:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0, %{{.*}}, %{{.*}}, %arg1, %arg2, %[[SUMS]]#0, %[[SUMS]]#1 :
// CHECK: %[[P:.+]]:2 = linalg.generic {{.*}} iterator_types = ["reduction", "reduction", "parallel"]}
// CHECK: return %[[DX]], %[[P]]#0, %[[P]]#1
func.func @layer_norm_grad(%x: tensor<2x5x6xf32>, %g: tensor<6xf32>, %dy: tensor<2x5x6xf32>) -> (tensor<2x5x6xf32>, tensor<6xf32>, tensor<6xf32>) {
  %dx, %dg, %db = reformer.layer_norm_grad %x, %g, %dy : (tensor<2x5x6xf32>, tensor<6xf32>, tensor<2x5x6xf32>) -> (tensor<2x5x6xf32>, tensor<6xf32>, tensor<6xf32>)
  return %dx, %dg, %db : tensor<2x5x6xf32>, tensor<6xf32>, tensor<6xf32>
}

// -----

// softmax_cross_entropy_grad: row max, row Σexp, Σw, then one elementwise
// generic comparing the vocabulary index with the target.
// CHECK-LABEL: func.func @cross_entropy_grad
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: iterator_types = ["reduction", "reduction"]} ins(%arg2
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0, %{{.*}}, %{{.*}}, %arg1, %{{.*}}, %arg2 :
// CHECK: linalg.index 2
// CHECK: arith.cmpi eq
// CHECK: arith.select
func.func @cross_entropy_grad(%l: tensor<2x5x7xf32>, %t: tensor<2x5xi32>, %w: tensor<2x5xf32>) -> tensor<2x5x7xf32> {
  %d = reformer.softmax_cross_entropy_grad %l, %t weights(%w) : (tensor<2x5x7xf32>, tensor<2x5xi32>, tensor<2x5xf32>) -> tensor<2x5x7xf32>
  return %d : tensor<2x5x7xf32>
}

// -----

// adam_update: bias corrections once from the step, then one elementwise
// generic with three results (parameter, m, v), tagged for the passes that
// place its gradient and merge the updates.
// CHECK-LABEL: func.func @adam
// CHECK-DAG: %[[LR:.+]] = tensor.extract %arg4[] : tensor<f32>
// CHECK-DAG: %[[T:.+]] = tensor.extract %arg5[] : tensor<f32>
// CHECK: math.powf %{{.*}}, %[[T]]
// CHECK: math.powf %{{.*}}, %[[T]]
// CHECK: %{{.+}}:3 = linalg.generic {{.*}} ins(%arg0, %arg1, %arg2, %arg3 :
// CHECK-SAME: attrs = {reformer.optimizer_update}
// CHECK: math.sqrt
// CHECK: arith.mulf %[[LR]]
func.func @adam(%p: tensor<6x7xf32>, %g: tensor<6x7xf32>, %m: tensor<6x7xf32>, %v: tensor<6x7xf32>, %lr: tensor<f32>, %s: tensor<f32>) -> (tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>) {
  %p2, %m2, %v2 = reformer.adam_update %p, %g, %m, %v, %lr, %s {weight_decay = 0.01 : f64} : (tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>, tensor<f32>, tensor<f32>) -> (tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>)
  return %p2, %m2, %v2 : tensor<6x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>
}

// -----

// chunked_ffn_grad: a loop over chunks carrying the input gradient and the
// four weight-gradient accumulators; each chunk recomputes its
// pre-activation (one matmul), takes the activation and its derivative in
// one generic, and accumulates dW2 and dW1 into the carried tensors (the
// matmuls' outputs, not fresh zeros). 74 rows in chunks of 16: a
// remainder of 10 after the loop.
// CHECK-LABEL: func.func @chunked_ffn_grad
// CHECK: %[[R:.+]]:5 = scf.for %[[I:.+]] = %c0{{.*}} to %c64{{.*}} step %c16{{.*}} iter_args(%[[DX:.+]] = %{{.*}}, %[[DW1:.+]] = %{{.*}}, %[[DB1:.+]] = %{{.*}}, %[[DW2:.+]] = %{{.*}}, %[[DB2:.+]] = %{{.*}})
// CHECK: %[[XC:.+]] = tensor.extract_slice %{{.*}}[%[[I]], 0] [16, 16] [1, 1]
// CHECK: linalg.matmul ins(%[[XC]], %arg1
// CHECK: %[[HD:.+]]:2 = linalg.generic
// CHECK: math.erf
// CHECK: math.exp
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<24x16xf32>, tensor<16x16xf32>) outs(%[[DW2]] : tensor<24x16xf32>)
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<16x16xf32>, tensor<16x24xf32>) outs(%[[DW1]] : tensor<16x24xf32>)
// CHECK: tensor.insert_slice %{{.*}} into %[[DX]][%[[I]], 0] [16, 16] [1, 1]
// CHECK: scf.yield
// CHECK: tensor.extract_slice %{{.*}}[64, 0] [10, 16] [1, 1]
func.func @chunked_ffn_grad(%x: tensor<2x37x16xf32>, %w1: tensor<16x24xf32>, %b1: tensor<24xf32>,
                            %w2: tensor<24x16xf32>, %dy: tensor<2x37x16xf32>)
    -> (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>, tensor<24x16xf32>, tensor<16xf32>) {
  %dx, %dw1, %db1, %dw2, %db2 = reformer.chunked_ffn_grad %x, %w1, %b1, %w2, %dy {chunk = 16 : i64, activation = #reformer.activation<gelu>}
      : (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>, tensor<24x16xf32>, tensor<2x37x16xf32>)
      -> (tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>, tensor<24x16xf32>, tensor<16xf32>)
  return %dx, %dw1, %db1, %dw2, %db2 : tensor<2x37x16xf32>, tensor<16x24xf32>, tensor<24xf32>, tensor<24x16xf32>, tensor<16xf32>
}

// -----

// The LSH backward rebuilds the sort from the stored buckets (no rotation
// is drawn, nothing re-hashed), then walks the blocks: parallel over
// (batch, head), serial over the 2·64/16 = 8 query chunks. Per block: the
// recomputed scores, dP = g·Vᵀ, dV = Pᵀ·g, dK = dSᵀ·Q and dQ = dS·K, all on
// 16 × 32 windows; no 64 × 64 (L × L) buffer exists.
// CHECK-LABEL: func.func @lsh_attention_grad
// CHECK-NOT: math.cos
// CHECK-NOT: memref<{{.*}}64x64
// CHECK: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = (%c0, %c0, %c0) to (%c1{{.*}}, %c2{{.*}}, %c2{{.*}})
// CHECK: linalg.generic {{.*}} ins(%arg4 : tensor<1x2x2x64xf32>)
// CHECK: linalg.generic {{.*}} ins(%arg3, %arg2 : tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) = (%{{.*}}, %{{.*}}) to (%c1{{.*}}, %c2{{.*}})
// CHECK: scf.for %{{.*}} = %{{.*}} to %c8 step
// CHECK: linalg.matmul ins(%[[Q:.+]], %[[KT:.+]] : memref<16x16xf32>, memref<16x32xf32>)
// CHECK: linalg.matmul ins(%[[G:.+]], %[[VT:.+]] : memref<16x16xf32>, memref<16x32xf32>)
// CHECK: linalg.matmul ins(%{{.*}}, %[[G]] : memref<32x16xf32>, memref<16x16xf32>)
// CHECK: linalg.matmul ins(%{{.*}}, %[[Q]] : memref<32x16xf32>, memref<16x16xf32>)
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<16x32xf32>, memref<32x16xf32>)
// CHECK-NOT: memref.atomic_rmw
// CHECK: scf.reduce
// CHECK: math.rsqrt
// CHECK-NOT: memref<{{.*}}64x64
// With grad-block-run=2 the 8 query chunks of a head are 4 parallel runs
// of 2, which add into the gradients atomically.
// RUN1-LABEL: func.func @lsh_attention_grad
// RUN1: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = (%c0{{.*}}, %c0{{.*}}, %c0{{.*}}) to (%c1{{.*}}, %c2{{.*}}, %c4{{.*}})
// RUN1: scf.for %{{.*}} = %{{.*}} to %c2{{.*}} step
// RUN1: vector.transpose {{.*}} : vector<4x4xf32> to vector<4x4xf32>
// RUN1: memref.atomic_rmw addf {{.*}} : (f32, memref<1x2x64x16xf32>) -> f32
// RUN1: } loc("lsh_attention_grad"(
// Outlined, the blocks take the shared rows, values, sort permutation,
// output gradients, per-round log-sum-exps, round weights and do·out, and
// add into the three zeroed gradients.
// OUTLINE-LABEL: func.func @lsh_attention_grad
// OUTLINE: call @[[GRAD:lsh_attention_grad_lsh_attention_grad_[0-9]+]](%{{.*}}) : (memref<1x2x64x16xf32>, memref<1x2x64x16xf32>, memref<1x2x2x64xi32>, memref<1x2x64x16xf32>, memref<1x2x2x64xf32>, memref<1x2x2x64xf32>, memref<1x2x64xf32>, memref<1x2x64x16xf32>, memref<1x2x64x16xf32>, memref<1x2x64x16xf32>) -> ()
// OUTLINE: math.rsqrt
// OUTLINE: func.func private @[[GRAD]]({{.*}}) attributes {reformer.lsh_attention_grad_block = {causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64, chunks_before = 1 : i64, key_norm_eps = {{.*}} : f64, masked_score = -1.000000e+09 : f64, self_score = -1.000000e+05 : f64}}
// OUTLINE: scf.parallel
// OUTLINE: linalg.matmul
// OUTLINE: return
func.func @lsh_attention_grad(%qk: tensor<1x2x64x16xf32>, %v: tensor<1x2x64x16xf32>, %out: tensor<1x2x64x16xf32>,
                              %dy: tensor<1x2x64x16xf32>, %lse: tensor<1x2x2x64xf32>, %buckets: tensor<1x2x2x64xi32>)
    -> (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) {
  %dqk, %dv = reformer.lsh_attention_grad %qk, %v, %out, %dy lse(%lse) buckets(%buckets) {n_buckets = array<i64: 4>, chunk_len = 16 : i64, causal}
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x2x64xf32>, tensor<1x2x2x64xi32>)
      -> (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
  return %dqk, %dv : tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>
}

// -----

// Local attention's backward: the same blocks without rounds; a window of
// 2 chunks of 16 (chunks_before = 1), 4 query chunks per head.
// CHECK-LABEL: func.func @local_attention_grad
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) = (%{{.*}}, %{{.*}}) to (%c2{{.*}}, %c1{{.*}})
// CHECK: scf.for %{{.*}} = %{{.*}} to %c4 step
// CHECK-COUNT-5: linalg.matmul
// CHECK: scf.reduce
// RUN1-LABEL: func.func @local_attention_grad
// RUN1: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = ({{.*}}) to (%c2{{.*}}, %c1{{.*}}, %c2{{.*}})
// RUN1: memref.atomic_rmw addf
// RUN1: } loc("local_attention_grad"(
// Outlined, the blocks also take room for the forward's outputs and
// log-sum-exps (for a fused kernel; the loops leave them alone).
// OUTLINE-LABEL: func.func @local_attention_grad
// OUTLINE: call @[[LGRAD:local_attention_grad_local_attention_grad_[0-9]+]](%{{.*}}) : (memref<2x1x64x16xf32>, memref<2x1x64x16xf32>, memref<2x1x64x16xf32>, memref<2x1x64x16xf32>, memref<2x1x64x16xf32>, memref<2x1x64xf32>, memref<2x1x64x16xf32>, memref<2x1x64x16xf32>, memref<2x1x64x16xf32>) -> ()
// OUTLINE: func.func private @[[LGRAD]]({{.*}}) attributes {reformer.local_attention_grad_block = {causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64, chunks_before = 1 : i64, masked_score = -1.000000e+09 : f64}}
// OUTLINE: scf.parallel
// OUTLINE-COUNT-5: linalg.matmul
// OUTLINE: return
func.func @local_attention_grad(%q: tensor<2x1x64x16xf32>, %dy: tensor<2x1x64x16xf32>)
    -> (tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>) {
  %dq, %dk, %dv = reformer.local_attention_grad %q, %q, %q, %dy {chunk_len = 16 : i64, causal}
      : (tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>)
      -> (tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>)
  return %dq, %dk, %dv : tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>, tensor<2x1x64x16xf32>
}

// -----

// Embedding gradient: a scatter-add, parallel over blocks of 16 columns so
// no two workers add into one element; ids outside [0, V) add nothing.
// CHECK-LABEL: func.func @embedding_grad
// CHECK: linalg.fill {{.*}} outs(%[[G:.+]] : memref<10x32xf32>)
// CHECK: scf.parallel (%{{.*}}) = (%c0) to (%c2)
// CHECK: %[[ID:.+]] = arith.index_cast
// CHECK: arith.cmpi slt, %[[ID]], %c10
// CHECK: scf.if
// CHECK: memref.load %[[G]][%[[ID]]
// CHECK: memref.store %{{.*}}, %[[G]][%[[ID]]
func.func @embedding_grad(%tok: tensor<2x12xi32>, %dy: tensor<2x12x32xf32>) -> tensor<10x32xf32> {
  %dt = reformer.embedding_grad %tok, %dy : (tensor<2x12xi32>, tensor<2x12x32xf32>) -> tensor<10x32xf32>
  return %dt : tensor<10x32xf32>
}

// -----

// Axial gradients: positions padded to 3·4 = 12 with zeros and split into
// the axes; each weight sums its column block over the other axes.
// CHECK-LABEL: func.func @axial_pos_embedding_grad
// CHECK: %[[PAD:.+]] = tensor.insert_slice %arg0 into %{{.*}}[0, 0, 0] [2, 10, 6] [1, 1, 1] : tensor<2x10x6xf32> into tensor<2x12x6xf32>
// CHECK: %[[AX:.+]] = tensor.expand_shape %[[PAD]] {{\[}}[0], [1, 2], [3]] output_shape [2, 3, 4, 6]
// CHECK: tensor.extract_slice %[[AX]][0, 0, 0, 0] [2, 3, 4, 2]
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "parallel", "reduction", "parallel"]
// CHECK: tensor.extract_slice %[[AX]][0, 0, 0, 2] [2, 3, 4, 4]
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "reduction", "parallel", "parallel"]
func.func @axial_pos_embedding_grad(%dy: tensor<2x10x6xf32>) -> (tensor<3x2xf32>, tensor<4x4xf32>) {
  %a, %b = reformer.axial_pos_embedding_grad %dy : (tensor<2x10x6xf32>) -> (tensor<3x2xf32>, tensor<4x4xf32>)
  return %a, %b : tensor<3x2xf32>, tensor<4x4xf32>
}

// -----

// The clip factor: one 0-D sum of squares carried through a full reduction
// per gradient, then min(1, max_norm / (sqrt(sum) + 1e-6)).
// CHECK-LABEL: func.func @clip_scale
// CHECK: %[[S0:.+]] = linalg.generic {{.*}} iterator_types = ["reduction"]} ins(%arg0 : tensor<16xf32>) outs(%{{.*}} : tensor<f32>)
// CHECK: %[[S1:.+]] = linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]} ins(%arg1 : tensor<4x4xf32>) outs(%[[S0]] : tensor<f32>)
// CHECK: %[[SUM:.+]] = tensor.extract %[[S1]][]
// CHECK: %[[NORM:.+]] = math.sqrt %[[SUM]]
// CHECK: arith.minimumf
// CHECK: tensor.from_elements
func.func @clip_scale(%g: tensor<16xf32>, %h: tensor<4x4xf32>) -> tensor<f32> {
  %s = reformer.clip_scale %g, %h {max_norm = 1.0 : f64} : (tensor<16xf32>, tensor<4x4xf32>) -> tensor<f32>
  return %s : tensor<f32>
}

// -----

// Adafactor: row and column means of g² (two reductions) blend into the
// factored moments; Σu² (for the update clipping) and Σp² (for the
// relative step) are full reductions that recompute u elementwise; the
// final write recomputes u again instead of materializing it.
// CHECK-LABEL: func.func @adafactor
// CHECK: math.powf
// CHECK: %[[ROWSUM:.+]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%arg1 : tensor<4x8xf32>)
// CHECK: %[[VR:.+]] = linalg.generic {{.*}} ins(%arg2, %[[ROWSUM]] : tensor<4xf32>, tensor<4xf32>)
// CHECK: %[[COLSUM:.+]] = linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]} ins(%arg1 : tensor<4x8xf32>)
// CHECK: %[[VC:.+]] = linalg.generic {{.*}} ins(%arg3, %[[COLSUM]] : tensor<8xf32>, tensor<8xf32>)
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]} ins(%arg1, %[[VR]], %[[VC]]
// CHECK: math.rsqrt
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]} ins(%arg0 : tensor<4x8xf32>)
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%arg0, %arg1, %[[VR]], %[[VC]]
// CHECK: return %{{.*}}, %[[VR]], %[[VC]]
func.func @adafactor(%w: tensor<4x8xf32>, %g: tensor<4x8xf32>, %r: tensor<4xf32>, %c: tensor<8xf32>, %lr: tensor<f32>, %t: tensor<f32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>) {
  %w2, %r2, %c2 = reformer.adafactor_update %w, %g, %lr, %t rows(%r) cols(%c) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>)
  return %w2, %r2, %c2 : tensor<4x8xf32>, tensor<4xf32>, tensor<8xf32>
}

// -----

// Seeded dropout: one elementwise generic; the keep decision hashes (seed,
// salt, row-major index) with splitmix64 in registers, no mask is stored.
// CHECK-LABEL: func.func @dropout
// CHECK: %[[SEED:.+]] = tensor.extract %arg1[]
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]} ins(%arg0 : tensor<2x8xf32>)
// CHECK: linalg.index 0
// CHECK: linalg.index 1
// CHECK: arith.shrui
// CHECK: arith.muli
// CHECK: arith.uitofp
// CHECK: arith.cmpf oge
// CHECK: arith.select
func.func @dropout(%x: tensor<2x8xf32>, %s: tensor<i64>) -> tensor<2x8xf32> {
  %y = reformer.dropout %x seed(%s) {rate = 0.25 : f64, salt = 7 : i64} : (tensor<2x8xf32>, tensor<i64>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

// Each lowered op reads its tensors through buffers of its own: cse must not
// merge the gradient's reads into the forward's, or writes bufferization
// places between the two could reuse the buffer before the gradient reads it.
// READS-LABEL: func.func @two_reads
// READS: bufferization.to_buffer %[[Q:[a-z0-9]+]] read_only {reformer.read_site = [[A:[0-9]+]] : i64}
// READS: bufferization.to_buffer %[[Q]] read_only {reformer.read_site = [[B:[0-9]+]] : i64}
func.func @two_reads(%q: tensor<1x2x32x8xf32>, %dy: tensor<1x2x32x8xf32>)
    -> (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>) {
  %o = reformer.local_attention %q, %q, %q {causal, chunk_len = 8 : i64}
      : (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>) -> tensor<1x2x32x8xf32>
  %g:3 = reformer.local_attention_grad %q, %q, %q, %dy {causal, chunk_len = 8 : i64}
      : (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>)
      -> (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>)
  return %o, %g#0 : tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>
}

// -----

// bf16 projections are hashed as they are: the rotating matmul reads them
// in place (and widens them), with no f32 copy of the whole tensor.
// CHECK-LABEL: func.func @hash_bf16
// CHECK: %[[QK:.+]] = bufferization.to_buffer %arg0 read_only {{.*}} : tensor<1x2x64x16xbf16> to memref<1x2x64x16xbf16>
// CHECK-NOT: tensor<1x2x64x16xf32>
// CHECK: %[[ROWS:.+]] = memref.subview %[[QK]]
// CHECK: linalg.matmul ins(%[[ROWS]], %{{.*}} : memref<64x16xbf16, {{.*}}>, memref<16x8xf32, {{.*}}>) outs(%{{.*}} : memref<64x8xf32>)
func.func @hash_bf16(%qk: tensor<1x2x64x16xbf16>, %rot: tensor<2x16x2x4xf32>) -> tensor<1x2x2x64xi32> {
  %b = reformer.lsh_hash %qk, %rot {n_buckets = array<i64: 8>}
      : (tensor<1x2x64x16xbf16>, tensor<2x16x2x4xf32>) -> tensor<1x2x2x64xi32>
  return %b : tensor<1x2x2x64xi32>
}

// -----

// Rotations drawn from a seed known at run time (a layer function's
// argument): the stream's key is mixed from the operand, not folded.
// CHECK-LABEL: func.func @rotations_from_operand
// CHECK: %[[S:.+]] = tensor.extract %arg0[] : tensor<i64>
// CHECK: %[[X:.+]] = arith.shrui %[[S]], %{{.*}} : i64
// CHECK: arith.xori %[[S]], %[[X]] : i64
// CHECK: linalg.generic
// CHECK: math.log
// CHECK: math.cos
func.func @rotations_from_operand(%seed: tensor<i64>) -> tensor<2x8x2x4xf32> {
  %r = reformer.lsh_rotations seed(%seed : tensor<i64>) : tensor<2x8x2x4xf32>
  return %r : tensor<2x8x2x4xf32>
}
