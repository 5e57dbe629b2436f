// RUN: reformer-opt %s --rf-cpu-pipeline | FileCheck %s

// Everything is LLVM dialect; the function takes bare pointers with its
// result as a trailing out-parameter; the entry point and manifest exist.
// CHECK-NOT: reformer.
// CHECK-NOT: func.func
// CHECK-LABEL: llvm.func @f(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr {reformer.param = "g"}, %{{.*}}: !llvm.ptr {reformer.param = "b"}, %{{.*}}: !llvm.ptr)
// CHECK: llvm.func @reformer_entry_f(%{{.*}}: !llvm.ptr)
// CHECK: llvm.call @f
// CHECK: @reformer_abi("reformer-abi 1\0Afunction f reformer_entry_f 4\0Ainput arg0 f32 2x16x8\0Aparam g f32 8\0Aparam b f32 8\0Aoutput result0 f32 2x16x8\0A\00")
func.func @f(%x: tensor<2x16x8xf32>, %g: tensor<8xf32> {reformer.param = "g"}, %b: tensor<8xf32> {reformer.param = "b"})
    -> tensor<2x16x8xf32> {
  %0 = reformer.layer_norm %x, %g, %b : (tensor<2x16x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x16x8xf32>
  return %0 : tensor<2x16x8xf32>
}
