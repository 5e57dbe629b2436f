// RUN: reformer-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(rf-serialize-matmul-foralls))' | FileCheck %s

// The chunked FFN's forall over chunks becomes a host loop in the same
// order of iterations; its body is unchanged.
// CHECK-LABEL: func.func @chunks
// CHECK-NOT: scf.forall
// CHECK: %[[LB:.*]] = arith.constant 0 : index
// CHECK: %[[UB:.*]] = arith.constant 4 : index
// CHECK: %[[STEP:.*]] = arith.constant 1 : index
// CHECK: scf.for %[[I:.*]] = %[[LB]] to %[[UB]] step %[[STEP]] {
// CHECK: memref.subview %arg2[%[[I]], 0, 0]
// CHECK: linalg.matmul
// CHECK-NEXT: }
func.func @chunks(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                  %s: memref<4x64x64xf32>) {
  scf.forall (%i) in (4) {
    %v = memref.subview %s[%i, 0, 0] [1, 64, 64] [1, 1, 1]
        : memref<4x64x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
    linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                  outs(%v : memref<64x64xf32, strided<[64, 1], offset: ?>>)
  }
  return
}

// -----

// Two dimensions become a loop nest.
// CHECK-LABEL: func.func @nest
// CHECK: scf.for %[[I:.*]] =
// CHECK: scf.for %[[J:.*]] =
// CHECK: memref.subview %arg2[%[[I]], %[[J]], 0, 0]
func.func @nest(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                %s: memref<2x3x64x64xf32>) {
  scf.forall (%i, %j) in (2, 3) {
    %v = memref.subview %s[%i, %j, 0, 0] [1, 1, 64, 64] [1, 1, 1, 1]
        : memref<2x3x64x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
    linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                  outs(%v : memref<64x64xf32, strided<[64, 1], offset: ?>>)
  }
  return
}

// -----

// Left alone: a forall without a matmul, and one inside a parallel loop.
// CHECK-LABEL: func.func @left_alone
// CHECK: scf.forall
// CHECK: scf.parallel
// CHECK: scf.forall
// CHECK: linalg.matmul
func.func @left_alone(%a: memref<64x32xf32>, %b: memref<32x64xf32>,
                      %s: memref<4x64x64xf32>, %x: memref<4xf32>) {
  %one = arith.constant 1.0 : f32
  scf.forall (%i) in (4) {
    memref.store %one, %x[%i] : memref<4xf32>
  }
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  scf.parallel (%p) = (%c0) to (%c2) step (%c1) {
    scf.forall (%i) in (2) {
      %k = arith.addi %p, %i : index
      %v = memref.subview %s[%k, 0, 0] [1, 64, 64] [1, 1, 1]
          : memref<4x64x64xf32> to memref<64x64xf32, strided<[64, 1], offset: ?>>
      linalg.matmul ins(%a, %b : memref<64x32xf32>, memref<32x64xf32>)
                    outs(%v : memref<64x64xf32, strided<[64, 1], offset: ?>>)
    }
    scf.reduce
  }
  return
}
