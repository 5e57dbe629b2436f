// REQUIRES: cuda-toolkit
// RUN: reformer-opt %s --rf-gpu-pipeline="format=isa" | FileCheck %s
// RUN: reformer-opt %s --rf-gpu-pipeline="format=isa matmul-precision=f32" | FileCheck %s --check-prefix=F32
// RUN: reformer-opt %s --rf-gpu-pipeline="format=isa chip=sm_80" | FileCheck %s --check-prefix=SM80

// A chunked FFN of 4 chunks: the host runs the chunks one after another
// (no kernel walks a chunk alone), each chunk's two matmuls are
// tensor-core kernels (bf16 mma.sync, f32 accumulators), and each adds its
// bias (the first also the activation) as it stores: no elementwise kernel
// runs between them, and the second writes the chunk's rows of the result
// itself (no copy kernel follows).
// CHECK-LABEL: llvm.func @ffn(
// CHECK: llvm.cond_br
// CHECK: gpu.launch_func @ffn_matmul_mma::
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.launch_func @ffn_matmul_mma_{{[0-9]+}}::
// CHECK-NOT: gpu.launch_func
// CHECK: llvm.br ^bb1
// CHECK: gpu.binary @ffn_matmul_mma {{.*}}mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// F32-LABEL: llvm.func @ffn(
// F32-NOT: mma.sync
// SM80: .target sm_80
// SM80: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
func.func @ffn(%x: tensor<1x256x64xf32>,
               %w1: tensor<64x128xf32> {reformer.param = "w1"},
               %b1: tensor<128xf32> {reformer.param = "b1"},
               %w2: tensor<128x64xf32> {reformer.param = "w2"},
               %b2: tensor<64xf32> {reformer.param = "b2"})
    -> tensor<1x256x64xf32> {
  %0 = reformer.chunked_ffn %x, %w1, %b1, %w2, %b2 {chunk = 64 : i64, activation = #reformer.activation<gelu>}
      : (tensor<1x256x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<1x256x64xf32>
  return %0 : tensor<1x256x64xf32>
}
