// RUN: reformer-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(rf-lower-matmuls-to-mma),canonicalize,cse)' | FileCheck %s

// Tile-aligned sizes: a 2 x 2 grid of 128-thread blocks, two bf16 tiles of
// 32-bit pairs in shared memory, 2 steps of k = 32, and per step 16
// mma.sync (2 x 4 per warp, twice 16 of k). No bounds checks. The zero
// fill is folded: C is written, never read.
// CHECK-LABEL: func.func @aligned
// CHECK-NOT: linalg.fill
// CHECK-NOT: arith.minui
// CHECK-NOT: arith.select
// CHECK-NOT: scf.if
// CHECK-NOT: memref.load %arg2
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %[[TWO:c2]], {{.*}} = %[[TWO]], {{.*}} = %c1) threads({{.*}}) in ({{.*}} = %c128, {{.*}} = %c1, {{.*}} = %c1) workgroup(%[[A:.*]] : memref<64x20xi32, #gpu.address_space<workgroup>>, %[[B:.*]] : memref<64x20xi32, #gpu.address_space<workgroup>>)
// CHECK: scf.for %{{.*}} = %c0 to %c64 step %c32 iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK-COUNT-8: nvvm.convert.f32x2.to.bf16x2 {{.*}} {rnd = #nvvm.fp_rnd_mode<rn>} : vector<2xbf16>
// CHECK: memref.store %{{.*}}, %[[A]]
// CHECK-COUNT-8: nvvm.convert.f32x2.to.bf16x2
// CHECK: memref.store %{{.*}}, %[[B]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[A]]
// CHECK: memref.load %[[B]]
// CHECK-COUNT-16: nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK: gpu.barrier
// CHECK: scf.yield
// CHECK: memref.store %{{.*}}, %arg2
// CHECK: gpu.terminator
// CHECK-NOT: linalg.matmul
func.func @aligned(%a: memref<128x64xf32>, %b: memref<64x128xf32>,
                   %c: memref<128x128xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<128x128xf32>)
  linalg.matmul ins(%a, %b : memref<128x64xf32>, memref<64x128xf32>)
                outs(%c : memref<128x128xf32>)
  return
}

// -----

// Ragged sizes (100 x 40 . 40 x 72) and a strided B: 2 x 2 blocks; reads
// past an edge are clamped and replaced by zeros, writes past it are
// skipped, and C is read and added to (no fill before the matmul).
// CHECK-LABEL: func.func @ragged
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c2, {{.*}} = %c2, {{.*}} = %c1)
// CHECK: scf.for %{{.*}} = %c0 to %c40 step %c32
// CHECK: arith.cmpi ult, %{{.*}}, %c100
// CHECK: arith.minui %{{.*}}, %c99
// CHECK: arith.cmpi ult, %{{.*}}, %c40
// CHECK: arith.minui %{{.*}}, %c39
// CHECK: memref.load %arg0
// CHECK: arith.select
// CHECK: memref.load %arg1{{.*}} : memref<40x72xf32, strided<[80, 1], offset: ?>>
// CHECK: nvvm.mma.sync
// CHECK: scf.yield
// CHECK: scf.if
// CHECK-NEXT: memref.load %arg2
// CHECK-NEXT: arith.addf
// CHECK-NEXT: memref.store %{{.*}}, %arg2
func.func @ragged(%a: memref<100x40xf32>,
                  %b: memref<40x72xf32, strided<[80, 1], offset: ?>>,
                  %c: memref<100x72xf32>) {
  linalg.matmul ins(%a, %b : memref<100x40xf32>,
                             memref<40x72xf32, strided<[80, 1], offset: ?>>)
                outs(%c : memref<100x72xf32>)
  return
}

// -----

// A fill that is not right before the matmul stays, and C is read.
// CHECK-LABEL: func.func @fill_apart
// CHECK: linalg.fill
// CHECK: memref.store
// CHECK: gpu.launch
// CHECK: memref.load %arg2
func.func @fill_apart(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                      %c: memref<64x64xf32>, %d: memref<4xf32>) {
  %one = arith.constant 1.0 : f32
  %c0 = arith.constant 0 : index
  linalg.fill ins(%one : f32) outs(%c : memref<64x64xf32>)
  memref.store %one, %d[%c0] : memref<4xf32>
  linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                outs(%c : memref<64x64xf32>)
  return
}

// -----

// Left to the loop lowering: dynamic sizes, f16 operands, matmuls
// inside parallel loops (a kernel cannot launch another) or under scf.if
// (which becomes a one-thread kernel), and a C that shares a buffer with
// A (blocks would overwrite rows others still read).
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: gpu.launch
// CHECK: linalg.matmul {{.*}} memref<?x64xf32>
// CHECK: linalg.matmul {{.*}} memref<64x64xf16>
// CHECK: scf.forall
// CHECK: linalg.matmul
// CHECK: scf.parallel
// CHECK: linalg.matmul
// CHECK: scf.if
// CHECK-NEXT: linalg.matmul {{.*}} outs(%arg6
// CHECK: linalg.matmul ins(%{{.*}}, %arg1 : memref<64x64xf32, strided<[64, 1]>>, memref<64x64xf32>)
// CHECK-NOT: gpu.launch
// CHECK: return
func.func @left_alone(%a: memref<?x64xf32>, %b: memref<64x64xf32>,
                      %c: memref<?x64xf32>, %h: memref<64x64xf16>,
                      %s: memref<4x64x64xf32>, %flag: i1,
                      %out: memref<64x64xf32>) {
  linalg.matmul ins(%a, %b : memref<?x64xf32>, memref<64x64xf32>)
                outs(%c : memref<?x64xf32>)
  linalg.matmul ins(%h, %h : memref<64x64xf16>, memref<64x64xf16>)
                outs(%h : memref<64x64xf16>)
  scf.forall (%i) in (4) {
    %v = memref.subview %s[%i, 0, 0] [1, 64, 64] [1, 1, 1]
        : memref<4x64x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
    linalg.matmul ins(%b, %b : memref<64x64xf32>, memref<64x64xf32>)
                  outs(%v : memref<64x64xf32, strided<[64, 1], offset: ?>>)
  }
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %v = memref.subview %s[%i, 0, 0] [1, 64, 64] [1, 1, 1]
        : memref<4x64x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
    linalg.matmul ins(%b, %b : memref<64x64xf32>, memref<64x64xf32>)
                  outs(%v : memref<64x64xf32, strided<[64, 1], offset: ?>>)
    scf.reduce
  }
  scf.if %flag {
    linalg.matmul ins(%b, %b : memref<64x64xf32>, memref<64x64xf32>)
                  outs(%out : memref<64x64xf32>)
  }
  %first = memref.subview %s[0, 0, 0] [1, 64, 64] [1, 1, 1]
      : memref<4x64x64xf32> to memref<64x64xf32, strided<[64, 1]>>
  %whole = memref.collapse_shape %s [[0, 1], [2]]
      : memref<4x64x64xf32> into memref<256x64xf32>
  %top = memref.subview %whole[0, 0] [64, 64] [1, 1]
      : memref<256x64xf32> to memref<64x64xf32, strided<[64, 1]>>
  linalg.matmul ins(%first, %b : memref<64x64xf32, strided<[64, 1]>>, memref<64x64xf32>)
                outs(%top : memref<64x64xf32, strided<[64, 1]>>)
  return
}

// -----

// A matmul in a host loop becomes a launch per iteration.
// CHECK-LABEL: func.func @in_host_loop
// CHECK: scf.for
// CHECK: gpu.launch
// CHECK: nvvm.mma.sync
func.func @in_host_loop(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                        %s: memref<4x64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %i = %c0 to %c4 step %c1 {
    %v = memref.subview %s[%i, 0, 0] [1, 64, 64] [1, 1, 1]
        : memref<4x64x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
    linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                  outs(%v : memref<64x64xf32, strided<[64, 1], offset: ?>>)
  }
  return
}

// -----

// An elementwise op right after the matmul that reads C where it writes
// (the FFN's bias and GELU, in place) runs in the kernel's store: each
// element's sum gets the bias of its column and the activation, and no
// separate pass over C remains. The kernel reads the bias at the column
// it stores.
// CHECK-LABEL: func.func @bias_and_gelu
// CHECK: gpu.launch
// CHECK: nvvm.mma.sync
// CHECK: %[[BIAS:.*]] = memref.load %arg2[%[[COL:.*]]] : memref<64xf32>
// CHECK-NEXT: arith.addf %{{.*}}, %[[BIAS]] : f32
// CHECK: math.erf
// CHECK: memref.store %{{.*}}, %arg3[%{{.*}}, %[[COL]]] : memref<64x64xf32>
// CHECK: gpu.terminator
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @bias_and_gelu(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                         %bias: memref<64xf32>, %c: memref<64x64xf32>) {
  %zero = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %rsqrt2 = arith.constant 0.707106769 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<64x64xf32>)
  linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                outs(%c : memref<64x64xf32>)
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                   affine_map<(d0, d1) -> (d1)>,
                                   affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<64x64xf32>, memref<64xf32>)
      outs(%c : memref<64x64xf32>) {
  ^bb0(%x: f32, %bi: f32, %o: f32):
    %y = arith.addf %x, %bi : f32
    %s = arith.mulf %y, %rsqrt2 : f32
    %e = math.erf %s : f32
    %p = arith.addf %e, %one : f32
    %h = arith.mulf %y, %half : f32
    %g = arith.mulf %h, %p : f32
    linalg.yield %g : f32
  }
  return
}

// -----

// The epilogue may write another buffer (a residual add into %r, reading
// the row's scale): C, a buffer nothing else reads, is then never written
// (nor allocated, once canonicalized) and the kernel stores into %r. A free
// between the matmul and the epilogue (of A) does not keep them apart. When C is read afterwards, or the
// epilogue reads C at another element, the epilogue stays a loop.
// CHECK-LABEL: func.func @residual
// CHECK-NOT: memref.alloc
// CHECK: gpu.launch
// CHECK: memref.load %arg2[%{{.*}}] : memref<64xf32>
// CHECK: memref.load %arg3[
// CHECK: memref.store %{{.*}}, %arg3[
// CHECK: gpu.terminator
// CHECK-NEXT: }
// CHECK-NEXT: memref.dealloc %arg0
// CHECK-NOT: linalg.generic
// CHECK: return
// CHECK-LABEL: func.func @kept
// CHECK: gpu.launch
// CHECK: linalg.generic
// CHECK: gpu.launch
// CHECK: linalg.generic
// CHECK-SAME: ins(%arg3 : memref<64x64xf32>) outs(%arg3 : memref<64x64xf32>)
func.func @residual(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                    %scale: memref<64xf32>, %r: memref<64x64xf32>) {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<64x64xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<64x64xf32>)
  linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                outs(%c : memref<64x64xf32>)
  memref.dealloc %a : memref<64x32xf32>
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                   affine_map<(d0, d1) -> (d0)>,
                                   affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %scale : memref<64x64xf32>, memref<64xf32>)
      outs(%r : memref<64x64xf32>) {
  ^bb0(%x: f32, %s: f32, %o: f32):
    %y = arith.mulf %x, %s : f32
    %z = arith.addf %y, %o : f32
    linalg.yield %z : f32
  }
  memref.dealloc %c : memref<64x64xf32>
  return
}
func.func @kept(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                %r: memref<64x64xf32>, %s: memref<64x64xf32>) -> f32 {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %c = memref.alloc() : memref<64x64xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<64x64xf32>)
  linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                outs(%c : memref<64x64xf32>)
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                   affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<64x64xf32>) outs(%r : memref<64x64xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  }
  %x = memref.load %c[%c0, %c0] : memref<64x64xf32>
  memref.dealloc %c : memref<64x64xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<64x64xf32>)
  linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                outs(%s : memref<64x64xf32>)
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>,
                                   affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%s : memref<64x64xf32>) outs(%s : memref<64x64xf32>) {
  ^bb0(%y: f32, %o: f32):
    linalg.yield %y : f32
  }
  return %x : f32
}

// -----

// bf16 operands in memory (mixed precision), f32 C: loaded as they are and
// widened exactly before the pair packing; a bf16 C stays a loop.
// CHECK-LABEL: func.func @bf16_operands
// CHECK: gpu.launch
// CHECK: memref.load %{{.*}} : memref<64x32xbf16>
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: memref.load %{{.*}} : memref<32x64xbf16>
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: nvvm.mma.sync
// CHECK: memref.store %{{.*}} : memref<64x64xf32>
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<64x32xbf16>, memref<32x64xbf16>) outs(%{{.*}} : memref<64x64xbf16>)
func.func @bf16_operands(%a: memref<64x32xbf16>, %b: memref<32x64xbf16>,
                         %c: memref<64x64xf32>, %h: memref<64x64xbf16>) {
  linalg.matmul ins(%a, %b : memref<64x32xbf16>, memref<32x64xbf16>)
                outs(%c : memref<64x64xf32>)
  linalg.matmul ins(%a, %b : memref<64x32xbf16>, memref<32x64xbf16>)
                outs(%h : memref<64x64xbf16>)
  return
}
