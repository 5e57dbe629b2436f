// RUN: reformer-opt %s --split-input-file --rf-lower-attention-to-mma | FileCheck %s
// RUN: reformer-opt %s --split-input-file --rf-lower-attention-to-mma=emulate-on-cpu=1 | FileCheck %s --check-prefix=EMU

// Chunks of 16 (one warp of 32 threads per block), head dimension 16, two
// rounds of 32 positions: 4 query chunks per (batch, head). The window (the
// chunk and its look-back) is two key tiles of 16. Per tile: one barrier
// after the key positions, one after the bf16 key and value tiles, one
// before the next tile; 2 mma.sync for the scores (2 key columns of 8),
// 2 for P·V (2 output columns of 8); row maxima over the 4 threads of a
// row with 2 xor shuffles per row. The sums are reduced once at the end.
// CHECK-LABEL: func.func private @blocks
// CHECK-NOT: memref.copy
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c4, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}) threads({{.*}}) in ({{[^)]*}} = %c32,
// CHECK-SAME: workgroup(%[[K:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %[[V:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %[[KPOS:.*]] : memref<16xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16xf32, #gpu.address_space<workgroup>>, %[[QPOS:.*]] : memref<16xi32, #gpu.address_space<workgroup>>)
// CHECK: memref.store %{{.*}}, %[[QPOS]]
// CHECK: gpu.barrier
// CHECK-COUNT-4: nvvm.convert.f32x2.to.bf16x2
// CHECK: scf.for %{{.*}} = %{{.*}} to %c2{{.*}} step %{{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK: math.rsqrt
// CHECK: memref.store %{{.*}}, %[[KPOS]]
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[K]]
// CHECK: memref.store %{{.*}}, %[[V]]
// CHECK: gpu.barrier
// CHECK-COUNT-2: nvvm.mma.sync {{.*}} {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>}
// CHECK-COUNT-4: gpu.shuffle  xor
// CHECK-COUNT-2: nvvm.mma.sync
// CHECK: gpu.barrier
// CHECK-NEXT: scf.yield
// CHECK-COUNT-2: gpu.shuffle  xor
// CHECK: math.log
// CHECK: memref.store %{{.*}}, %arg4
// CHECK: memref.store %{{.*}}, %arg5
// CHECK: gpu.terminator
// CHECK-NOT: nvvm.mma.sync

// The emulation: a parallel loop over (batch, head, query chunk), thread
// values as vector<32xT>, gathers and scatters, and the mma emulation
// function.
// EMU-LABEL: func.func private @blocks
// EMU-NOT: gpu.
// EMU: scf.parallel
// The sort permutation, 2 rounds of 32, as one flat buffer:
// EMU: vector.gather {{.*}} : memref<64xi32, strided<[1]>>, vector<32xindex>, vector<32xi1>, vector<32xi32> into vector<32xi32>
// EMU: vector.scatter
// EMU: call @__reformer_mma_m16n8k16_bf16
// EMU: vector.shuffle
// EMU: func.func private @__reformer_mma_m16n8k16_bf16(%{{.*}}: vector<32xi32>, {{.*}}) -> (vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>)
// EMU-COUNT-64: vector.shuffle
func.func private @blocks(%q: memref<1x1x32x16xf32>, %v: memref<1x1x32x16xf32>,
                          %perm: memref<1x1x2x32xi32>, %mask: memref<1x32xi1>,
                          %out: memref<1x1x2x32x16xf32>,
                          %lse: memref<1x1x2x32xf32>)
    attributes {reformer.lsh_attention_block = {
        causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64,
        chunks_before = 1 : i64, key_norm_eps = 1.0e-6 : f64,
        masked_score = -1.0e9 : f64, self_score = -1.0e5 : f64,
        sequence_order = false}} {
  return
}

// -----

// Chunks of 8 are below one warp's 16 rows: the loop body stays.
// CHECK-LABEL: func.func private @small_chunks
// CHECK: memref.store
// CHECK-NEXT: return
// CHECK-NOT: gpu.launch
func.func private @small_chunks(%q: memref<1x1x32x16xf32>,
                                %v: memref<1x1x32x16xf32>,
                                %perm: memref<1x1x1x32xi32>,
                                %out: memref<1x1x1x32x16xf32>,
                                %lse: memref<1x1x1x32xf32>)
    attributes {reformer.lsh_attention_block = {
        causal = false, chunk_len = 8 : i64, chunks_after = 0 : i64,
        chunks_before = 1 : i64, key_norm_eps = 1.0e-6 : f64,
        masked_score = -1.0e9 : f64, self_score = -1.0e5 : f64,
        sequence_order = false}} {
  %c0 = arith.constant 0 : index
  %x = arith.constant 1.0 : f32
  memref.store %x, %lse[%c0, %c0, %c0, %c0] : memref<1x1x1x32xf32>
  return
}

// -----

// Functions without the attribute are not touched.
// CHECK-LABEL: func.func @untagged
// CHECK-NEXT: return
func.func @untagged(%q: memref<1x1x32x16xf32>) {
  return
}

// -----

// Local attention: queries, separate (already scaled) keys, values and
// outputs; positions in order, keys of chunks past the sequence's ends
// absent (position -1, read as row 0, score -inf), no key normalization,
// no self mask, no log-sum-exps. Two query chunks of 16.
// CHECK-LABEL: func.func private @local
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c2{{.*}}, {{.*}} = %c2{{.*}}, {{.*}} = %c1{{.*}}) threads({{.*}}) in ({{[^)]*}} = %c32,
// CHECK-NOT: memref.load %arg2[
// CHECK-NOT: math.rsqrt
// CHECK-DAG: arith.cmpi sge
// CHECK-DAG: arith.cmpi slt
// CHECK: arith.select {{.*}} : f32
// CHECK: arith.maxsi
// CHECK: memref.load %arg1[
// CHECK: memref.load %arg2[
// CHECK-COUNT-2: nvvm.mma.sync
// CHECK-NOT: arith.cmpi eq
// CHECK: arith.cmpi sgt
// CHECK-COUNT-2: nvvm.mma.sync
// Each thread writes 2 rows x 2 columns of 2 outputs, and no log-sum-exp.
// CHECK-COUNT-8: memref.store %{{.*}}, %arg3[
// CHECK-NOT: memref.store
// CHECK: gpu.terminator
func.func private @local(%q: memref<1x2x32x16xf32>, %k: memref<1x2x32x16xf32>,
                         %v: memref<1x2x32x16xf32>,
                         %out: memref<1x2x32x16xf32>)
    attributes {reformer.local_attention_block = {
        causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64,
        chunks_before = 1 : i64, masked_score = -1.0e9 : f64}} {
  return
}

// -----

// The LSH attention gradient: a block per (key tile, head, batch), here 4
// key tiles of 16 sorted slots (one warp). The warp's 16 keys are
// normalized (rsqrt per row after two shuffles), the tile's keys go to
// shared memory transposed; then the query chunks whose window holds the
// tile (the chunk and the next: 2 iterations of one query tile of 16)
// carry dK and dV (2 × 8 accumulators). Per query tile: positions and
// statistics, then bf16 query and output-gradient rows, as rows and
// transposed; Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ in a loop over the head
// dimension; probabilities; dS re-packed along keys with a shuffle xor 4
// into shared memory; dV += P̃ᵀ·dO (transposed output gradients) and
// dK += dSᵀ·Q (transposed queries); dQ = dS·K added atomically.
// CHECK-LABEL: func.func private @grad_blocks
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c4, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}) threads({{.*}}) in ({{[^)]*}} = %c32,
// CHECK-SAME: workgroup(%[[KT:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %[[Q:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %[[QT:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %[[G:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %[[GT:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %[[DS:.*]] : memref<16x12xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16xf32, #gpu.address_space<workgroup>>, %[[QPOS:.*]] : memref<16xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16xf32, #gpu.address_space<workgroup>>)
// CHECK: gpu.shuffle  xor
// CHECK: gpu.shuffle  xor
// CHECK: math.rsqrt
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[KT]]
// CHECK: scf.for %{{.*}} = %{{.*}} to %c2{{.*}} step %{{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK: memref.store %{{.*}}, %[[QPOS]]
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[Q]]
// CHECK: memref.store %{{.*}}, %[[G]]
// CHECK: memref.store %{{.*}}, %[[QT]]
// CHECK: memref.store %{{.*}}, %[[GT]]
// CHECK: gpu.barrier
// CHECK: scf.for
// CHECK-COUNT-2: nvvm.mma.sync
// CHECK: memref.load %[[G]]
// CHECK: nvvm.mma.sync
// CHECK: nvvm.mma.sync
// CHECK: scf.yield
// CHECK-COUNT-8: math.exp
// CHECK: gpu.shuffle  xor %{{.*}}, %c4_i32
// CHECK: memref.store %{{.*}}, %[[DS]]
// CHECK: memref.load %[[GT]]
// CHECK: nvvm.mma.sync
// CHECK: memref.load %[[QT]]
// CHECK: nvvm.mma.sync
// CHECK: gpu.barrier
// CHECK: scf.for
// CHECK: memref.load %[[DS]]
// CHECK: memref.load %[[KT]]
// CHECK: nvvm.mma.sync
// CHECK-COUNT-4: memref.atomic_rmw addf %{{.*}}, %arg8[
// CHECK: gpu.barrier
// CHECK-NEXT: scf.yield
// CHECK-COUNT-8: memref.atomic_rmw addf
// CHECK: gpu.terminator

// EMU-LABEL: func.func private @grad_blocks
// EMU-NOT: gpu.
// EMU: scf.parallel
// EMU: call @__reformer_mma_m16n8k16_bf16
// The atomic adds, one per emulated thread:
// EMU: scf.for %[[T:.*]] = %{{.*}} to %c32
// EMU-NEXT: vector.extract %{{.*}}[%[[T]]] : index from vector<32xindex>
// EMU-NEXT: vector.extract %{{.*}}[%[[T]]] : f32 from vector<32xf32>
// EMU-NEXT: memref.atomic_rmw addf
func.func private @grad_blocks(%qk: memref<1x1x32x16xf32>,
                               %v: memref<1x1x32x16xf32>,
                               %perm: memref<1x1x2x32xi32>,
                               %mask: memref<1x32xi1>,
                               %dout: memref<1x1x32x16xf32>,
                               %lse: memref<1x1x2x32xf32>,
                               %weights: memref<1x1x2x32xf32>,
                               %outdot: memref<1x1x32xf32>,
                               %dq: memref<1x1x32x16xf32>,
                               %dk: memref<1x1x32x16xf32>,
                               %dv: memref<1x1x32x16xf32>)
    attributes {reformer.lsh_attention_grad_block = {
        causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64,
        chunks_before = 1 : i64, key_norm_eps = 1.0e-6 : f64,
        masked_score = -1.0e9 : f64, self_score = -1.0e5 : f64}} {
  return
}

// -----

// A gradient whose head dimension is not a multiple of 16 keeps its loops.
// CHECK-LABEL: func.func private @grad_narrow_head
// CHECK-NEXT: return
// CHECK-NOT: gpu.launch
func.func private @grad_narrow_head(%qk: memref<1x1x32x8xf32>,
                                    %v: memref<1x1x32x8xf32>,
                                    %perm: memref<1x1x2x32xi32>,
                                    %dout: memref<1x1x32x8xf32>,
                                    %lse: memref<1x1x2x32xf32>,
                                    %weights: memref<1x1x2x32xf32>,
                                    %outdot: memref<1x1x32xf32>,
                                    %dq: memref<1x1x32x8xf32>,
                                    %dk: memref<1x1x32x8xf32>,
                                    %dv: memref<1x1x32x8xf32>)
    attributes {reformer.lsh_attention_grad_block = {
        causal = false, chunk_len = 16 : i64, chunks_after = 0 : i64,
        chunks_before = 1 : i64, key_norm_eps = 1.0e-6 : f64,
        masked_score = -1.0e9 : f64, self_score = -1.0e5 : f64}} {
  return
}

// -----

// The local attention gradient: its op has no log-sum-exps, so the fused
// forward first writes the outputs and log-sum-exps into the function's
// scratch arguments; then the gradient kernel, whose query chunks past the
// sequence's ends are skipped (scf.if carrying dK and dV), and which takes
// do·out per query (a loop over the head dimension) and no self mask.
// CHECK-LABEL: func.func private @local_grad_blocks
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c2, {{.*}}) threads({{.*}}) in ({{[^)]*}} = %c32,
// CHECK: math.log
// CHECK: memref.store %{{.*}}, %arg4[
// CHECK: memref.store %{{.*}}, %arg5[
// CHECK: gpu.terminator
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c2{{.*}}, {{.*}}) threads({{.*}}) in ({{[^)]*}} = %c32{{.*}},
// CHECK-NOT: math.rsqrt
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK: scf.if %{{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK: memref.load %arg5[
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}) -> (f32)
// CHECK-DAG: memref.load %arg3[
// CHECK-DAG: memref.load %arg4[
// CHECK-NOT: arith.constant -1.000000e+05
// CHECK: memref.atomic_rmw addf %{{.*}}, %arg6[
// CHECK: memref.atomic_rmw addf %{{.*}}, %arg7[
// CHECK: memref.atomic_rmw addf %{{.*}}, %arg8[
// CHECK: gpu.terminator
func.func private @local_grad_blocks(%q: memref<1x1x32x16xf32>,
                                     %k: memref<1x1x32x16xf32>,
                                     %v: memref<1x1x32x16xf32>,
                                     %dout: memref<1x1x32x16xf32>,
                                     %out: memref<1x1x32x16xf32>,
                                     %lse: memref<1x1x32xf32>,
                                     %dq: memref<1x1x32x16xf32>,
                                     %dk: memref<1x1x32x16xf32>,
                                     %dv: memref<1x1x32x16xf32>)
    attributes {reformer.local_attention_grad_block = {
        causal = true, chunk_len = 16 : i64, chunks_after = 0 : i64,
        chunks_before = 1 : i64, masked_score = -1.0e9 : f64}} {
  return
}
