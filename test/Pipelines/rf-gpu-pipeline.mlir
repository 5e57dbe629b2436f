// REQUIRES: cuda-toolkit
// RUN: reformer-opt %s --rf-gpu-pipeline="format=isa" | FileCheck %s

// The host keeps only allocation (through the runtime's allocator) and
// launches: a layer norm becomes kernels in PTX for sm_90a; the host
// function takes bare pointers, and the entry point and ABI manifest are
// those of the CPU target.
// CHECK-NOT: reformer.
// CHECK-NOT: func.func
// CHECK-NOT: gpu.module
// CHECK-LABEL: llvm.func @f(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr {reformer.param = "g"}, %{{.*}}: !llvm.ptr {reformer.param = "b"}, %{{.*}}: !llvm.ptr)
// CHECK: llvm.call @_mlir_memref_to_llvm_alloc
// CHECK: gpu.launch_func
// CHECK: llvm.call @_mlir_memref_to_llvm_free
// CHECK: gpu.binary @f_kernel [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx81">, {{.*}}.target sm_90a
// CHECK: llvm.func @reformer_entry_f(%{{.*}}: !llvm.ptr)
// CHECK: @reformer_abi("reformer-abi 1\0Afunction f reformer_entry_f 4\0Ainput arg0 f32 2x16x8\0Aparam g f32 8\0Aparam b f32 8\0Aoutput result0 f32 2x16x8\0A\00")
func.func @f(%x: tensor<2x16x8xf32>, %g: tensor<8xf32> {reformer.param = "g"}, %b: tensor<8xf32> {reformer.param = "b"})
    -> tensor<2x16x8xf32> {
  %0 = reformer.layer_norm %x, %g, %b : (tensor<2x16x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x16x8xf32>
  return %0 : tensor<2x16x8xf32>
}
