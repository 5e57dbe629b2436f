// RUN: reformer-compile %s --emit=mlir --stop-after-stage=bufferized -o - | FileCheck %s

// Buffers are freed right after their last use (optimize-allocation-liveness),
// and the head views attention reads through keep their buffer alive: the
// split-heads rows are freed only after the attention blocks that read them
// through the strided view.
// CHECK-LABEL: func.func @f
// CHECK: %[[ROWS:.+]] = memref.alloc() {{.*}} : memref<64x32xf32>
// CHECK: %[[VIEW:.+]] = memref.reinterpret_cast %{{.*}} to offset: [0], sizes: [1, 2, 64, 16]
// CHECK-NOT: memref.dealloc %[[ROWS]]
// CHECK: scf.parallel
// CHECK: vector.load %[[VIEW]]
// CHECK: scf.reduce
// CHECK: memref.dealloc %[[ROWS]]
func.func @f(%x: tensor<1x64x32xf32>, %w: tensor<32x32xf32>) -> tensor<1x2x64x16xf32> {
  %p = reformer.dense %x, %w : (tensor<1x64x32xf32>, tensor<32x32xf32>) -> tensor<1x64x32xf32>
  %h = reformer.split_heads %p : (tensor<1x64x32xf32>) -> tensor<1x2x64x16xf32>
  %o = reformer.local_attention %h, %h, %h {chunk_len = 16 : i64, causal}
      : (tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>) -> tensor<1x2x64x16xf32>
  return %o : tensor<1x2x64x16xf32>
}
