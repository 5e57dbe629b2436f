// RUN: reformer-opt %s --pass-pipeline='builtin.module(func.func(rf-vectorize-matmuls{lanes=16 rows=8}))' --split-input-file | FileCheck %s

// B is packed once into 32-column panels; 128-row blocks of A run in
// parallel; each 8-row register block keeps 8 × 2 accumulators through the
// k loop: per k, two panel loads, eight broadcasts of A, sixteen FMAs.
// CHECK-LABEL: func.func @matmul
// CHECK: %[[PACK:.+]] = memref.alloc() {alignment = 64 : i64} : memref<2x256x32xf32>
// CHECK: scf.parallel
// CHECK: vector.transfer_read %{{.*}} {in_bounds = [true]} : memref<256x64xf32>, vector<16xf32>
// CHECK: vector.store %{{.*}}, %[[PACK]]
// CHECK: scf.parallel (%{{.*}}) = (%c0{{.*}}) to (%c2{{.*}})
// CHECK: memref.subview %[[PACK]]
// CHECK: vector.transfer_read %{{.*}} : memref<256x64xf32>, vector<16xf32>
// CHECK: scf.for {{.*}} iter_args(
// CHECK-COUNT-2: vector.load
// CHECK: memref.load
// CHECK: vector.broadcast
// CHECK-COUNT-2: vector.fma
// CHECK: vector.transfer_write
// CHECK: memref.dealloc %[[PACK]]
// CHECK-NOT: linalg.matmul
func.func @matmul(%a: memref<256x256xf32>, %b: memref<256x64xf32>, %c: memref<256x64xf32>) {
  linalg.matmul ins(%a, %b : memref<256x256xf32>, memref<256x64xf32>) outs(%c : memref<256x64xf32>)
  return
}

// -----

// A B that fits in L1 as whole panels (an attention block's keys) is read
// in place: no packed copy.
// CHECK-LABEL: func.func @small_b
// CHECK-NOT: memref.alloc
// CHECK: memref.subview %{{.*}}[0, %{{.*}}] [64, 32] [1, 1] : memref<64x128xf32> to memref<64x32xf32, strided<[128, 1], offset: ?>>
// CHECK: vector.fma
func.func @small_b(%a: memref<64x64xf32>, %b: memref<64x128xf32>, %c: memref<64x128xf32>) {
  linalg.matmul ins(%a, %b : memref<64x64xf32>, memref<64x128xf32>) outs(%c : memref<64x128xf32>)
  return
}

// -----

// A zero fill of C just before: accumulators start from zeros, the fill and
// the reads of C go. N = 40 leaves a partial last panel with masked
// (out-of-bounds) transfers; M = 10 leaves two single-row blocks.
// CHECK-LABEL: func.func @zero_init_partial
// CHECK-NOT: linalg.fill
// CHECK: vector.transfer_read %{{[^ ]+}}[%{{[^ ]+}}, %{{[^ ]+}}], %{{[a-z0-9_]+}} : memref<8x40xf32>, vector<16xf32>
// CHECK: %[[Z:.+]] = vector.broadcast %{{.*}} : f32 to vector<16xf32>
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[Z]]
// CHECK-NOT: linalg.matmul
func.func @zero_init_partial(%a: memref<10x8xf32>, %b: memref<8x40xf32>, %c: memref<10x40xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<10x40xf32>)
  linalg.matmul ins(%a, %b : memref<10x8xf32>, memref<8x40xf32>) outs(%c : memref<10x40xf32>)
  return
}

// -----

// bf16 operands (mixed precision's activations and weight copies): A's
// scalars and B's rows widen as they are read; B is packed as f32 even when
// it would fit in L1.
// CHECK-LABEL: func.func @bf16_operands
// CHECK: %[[PACK:.+]] = memref.alloc() {alignment = 64 : i64} : memref<1x8x32xf32>
// CHECK: vector.transfer_read %{{.*}} : memref<8x32xbf16>, vector<16xbf16>
// CHECK: arith.extf %{{.*}} : vector<16xbf16> to vector<16xf32>
// CHECK: vector.store %{{.*}}, %[[PACK]]
// CHECK: memref.load %{{.*}} : memref<4x8xbf16>
// CHECK-NEXT: arith.extf %{{.*}} : bf16 to f32
// CHECK: vector.fma
// CHECK-NOT: linalg.matmul
func.func @bf16_operands(%a: memref<4x8xbf16>, %b: memref<8x32xbf16>, %c: memref<4x32xf32>) {
  linalg.matmul ins(%a, %b : memref<4x8xbf16>, memref<8x32xbf16>) outs(%c : memref<4x32xf32>)
  return
}

// -----

// A bf16 C, or tensors: left alone.
// CHECK-LABEL: func.func @skipped
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<4x8xbf16>, memref<8x4xbf16>) outs(%{{.*}} : memref<4x4xbf16>)
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<8x4xf32>)
func.func @skipped(%a: memref<4x8xbf16>, %b: memref<8x4xbf16>, %c: memref<4x4xbf16>,
                   %x: tensor<4x8xf32>, %y: tensor<8x4xf32>, %z: tensor<4x4xf32>) -> tensor<4x4xf32> {
  linalg.matmul ins(%a, %b : memref<4x8xbf16>, memref<8x4xbf16>) outs(%c : memref<4x4xbf16>)
  %r = linalg.matmul ins(%x, %y : tensor<4x8xf32>, tensor<8x4xf32>) outs(%z : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %r : tensor<4x4xf32>
}

// -----

// B the same at every iteration of a loop (a chunked FFN's weights): packed
// once before the loop and freed after it.
// CHECK-LABEL: func.func @hoisted_pack
// CHECK: %[[PACK:.+]] = memref.alloc() {alignment = 64 : i64} : memref<2x256x32xf32>
// CHECK: scf.parallel
// CHECK: vector.store %{{.*}}, %[[PACK]]
// CHECK: scf.for
// CHECK-NOT: memref.alloc
// CHECK: vector.fma
// CHECK: memref.dealloc %[[PACK]]
// CHECK-NEXT: return
func.func @hoisted_pack(%a: memref<4x128x256xf32>, %b: memref<256x64xf32>, %c: memref<4x128x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %i = %c0 to %c4 step %c1 {
    %ai = memref.subview %a[%i, 0, 0] [1, 128, 256] [1, 1, 1] : memref<4x128x256xf32> to memref<128x256xf32, strided<[256, 1], offset: ?>>
    %ci = memref.subview %c[%i, 0, 0] [1, 128, 64] [1, 1, 1] : memref<4x128x64xf32> to memref<128x64xf32, strided<[64, 1], offset: ?>>
    linalg.matmul ins(%ai, %b : memref<128x256xf32, strided<[256, 1], offset: ?>>, memref<256x64xf32>) outs(%ci : memref<128x64xf32, strided<[64, 1], offset: ?>>)
  }
  return
}

// -----

// B written inside the loop: packed at every iteration.
// CHECK-LABEL: func.func @written_b
// CHECK: scf.for
// CHECK: linalg.fill
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<2x256x32xf32>
func.func @written_b(%a: memref<128x256xf32>, %b: memref<256x64xf32>, %c: memref<128x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %one = arith.constant 1.0 : f32
  scf.for %i = %c0 to %c4 step %c1 {
    linalg.fill ins(%one : f32) outs(%b : memref<256x64xf32>)
    linalg.matmul ins(%a, %b : memref<128x256xf32>, memref<256x64xf32>) outs(%c : memref<128x64xf32>)
  }
  return
}

// -----

// A matmul inside a parallel loop (one chunk of a chunked FFN per
// iteration): B is packed once before the parallel loop, and the row blocks
// are a plain loop, not a parallel loop nested in it.
// CHECK-LABEL: func.func @in_parallel_loop
// CHECK: %[[PACK:.+]] = memref.alloc() {alignment = 64 : i64} : memref<2x256x32xf32>
// CHECK: scf.parallel
// CHECK: vector.store %{{.*}}, %[[PACK]]
// CHECK: scf.parallel
// CHECK-NOT: scf.parallel
// CHECK: scf.for
// CHECK: vector.fma
// CHECK: memref.dealloc %[[PACK]]
// CHECK-NEXT: return
func.func @in_parallel_loop(%a: memref<4x256x256xf32>, %b: memref<256x64xf32>, %c: memref<4x256x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %ai = memref.subview %a[%i, 0, 0] [1, 256, 256] [1, 1, 1] : memref<4x256x256xf32> to memref<256x256xf32, strided<[256, 1], offset: ?>>
    %ci = memref.subview %c[%i, 0, 0] [1, 256, 64] [1, 1, 1] : memref<4x256x64xf32> to memref<256x64xf32, strided<[64, 1], offset: ?>>
    linalg.matmul ins(%ai, %b : memref<256x256xf32, strided<[256, 1], offset: ?>>, memref<256x64xf32>) outs(%ci : memref<256x64xf32, strided<[64, 1], offset: ?>>)
    scf.reduce
  }
  return
}
