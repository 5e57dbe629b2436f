// RUN: reformer-opt %s --rf-expand-strided-copies | FileCheck %s

// CHECK-LABEL: func.func @copies
// A contiguous copy stays (it becomes llvm.memcpy).
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<4x8xf32> to memref<4x8xf32>
// A copy out of a strided view becomes loops.
// CHECK: linalg.copy ins(%{{.*}} : memref<4x4xf32, strided<[8, 1], offset: 4>>) outs(%{{.*}} : memref<4x4xf32>)
// CHECK-NOT: memref.copy
func.func @copies(%a: memref<4x8xf32>, %b: memref<4x8xf32>, %c: memref<4x4xf32>) {
  memref.copy %a, %b : memref<4x8xf32> to memref<4x8xf32>
  %v = memref.subview %a[0, 4] [4, 4] [1, 1] : memref<4x8xf32> to memref<4x4xf32, strided<[8, 1], offset: 4>>
  memref.copy %v, %c : memref<4x4xf32, strided<[8, 1], offset: 4>> to memref<4x4xf32>
  return
}

// A contiguous copy of 1 MiB or more becomes linalg.copy too, so that
// rf-parallelize-linalg can share it across cores; a smaller one stays.
// CHECK-LABEL: func.func @large
// CHECK: linalg.copy ins(%{{.*}} : memref<512x512xf32>) outs(%{{.*}} : memref<512x512xf32>)
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<511x512xf32> to memref<511x512xf32>
func.func @large(%a: memref<512x512xf32>, %b: memref<512x512xf32>, %c: memref<511x512xf32>, %d: memref<511x512xf32>) {
  memref.copy %a, %b : memref<512x512xf32> to memref<512x512xf32>
  memref.copy %c, %d : memref<511x512xf32> to memref<511x512xf32>
  return
}
