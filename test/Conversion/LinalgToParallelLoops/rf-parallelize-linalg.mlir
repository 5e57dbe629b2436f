// RUN: reformer-opt %s --split-input-file --rf-parallelize-linalg="min-iterations=1024 blocks=8" | FileCheck %s

// An elementwise op on [1, 64, 32]: the batch loop has one iteration, so
// the 64 rows are cut into 8 blocks of 8; the inner 32 stay whole.
// CHECK-LABEL: func.func @elementwise
// CHECK: scf.parallel (%[[I:.*]]) = (%{{.*}}) to (%{{.*}}) step (%{{.*}})
// CHECK: memref.subview %{{.*}}[0, %[[I]], 0] [1, 8, 32] [1, 1, 1]
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : memref<1x8x32xf32, strided<[2048, 32, 1], offset: ?>>) outs(%{{.*}} : memref<1x8x32xf32, strided<[2048, 32, 1], offset: ?>>)
// CHECK: scf.reduce
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @elementwise(%a: memref<1x64x32xf32>, %b: memref<1x64x32xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : memref<1x64x32xf32>) outs(%b : memref<1x64x32xf32>) {
  ^bb0(%x: f32, %y: f32):
    %n = arith.negf %x : f32
    linalg.yield %n : f32
  }
  return
}

// -----

// A row reduction (layer-norm statistics): rows are shared out, the
// reduction over each row is not split, so results do not change.
// A linalg.index of the tiled loop is offset by the block's start.
// CHECK-LABEL: func.func @row_sums
// CHECK: scf.parallel
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: linalg.index 0
// CHECK: affine.apply
#in = affine_map<(d0, d1) -> (d0, d1)>
#out = affine_map<(d0, d1) -> (d0)>
func.func @row_sums(%a: memref<128x64xf32>, %s: memref<128xf32>) {
  linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel", "reduction"]}
      ins(%a : memref<128x64xf32>) outs(%s : memref<128xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %i = linalg.index 0 : index
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    %y = arith.addf %x, %f : f32
    %r = arith.addf %acc, %y : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Left alone: too small, a reduction over the only long loop, and an op
// already inside a parallel loop.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: scf.parallel
// CHECK: linalg.fill
// CHECK-NOT: scf.parallel
// CHECK: linalg.generic
// CHECK: scf.parallel
// CHECK-NOT: scf.parallel
// CHECK: linalg.fill
// CHECK: scf.reduce
#all = affine_map<(d0) -> (d0)>
#scalar = affine_map<(d0) -> ()>
func.func @left_alone(%small: memref<16x16xf32>, %long: memref<4096xf32>, %sum: memref<f32>, %big: memref<64x64xf32>) {
  %z = arith.constant 0.0 : f32
  linalg.fill ins(%z : f32) outs(%small : memref<16x16xf32>)
  linalg.generic {indexing_maps = [#all, #scalar], iterator_types = ["reduction"]}
      ins(%long : memref<4096xf32>) outs(%sum : memref<f32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %acc, %x : f32
    linalg.yield %r : f32
  }
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  scf.parallel (%i) = (%c0) to (%c2) step (%c1) {
    linalg.fill ins(%z : f32) outs(%big : memref<64x64xf32>)
    scf.reduce
  }
  return
}
