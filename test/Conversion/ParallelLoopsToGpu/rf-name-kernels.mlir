// RUN: reformer-opt %s --rf-name-kernels --split-input-file | FileCheck %s

// Each outlined kernel takes its module's name, and its launch follows.
// CHECK-LABEL: func.func @f
// CHECK: gpu.launch_func @f_kernel::@f_kernel
// CHECK: gpu.launch_func @f_kernel_0::@f_kernel_0
// CHECK: gpu.module @f_kernel
// CHECK: gpu.func @f_kernel() kernel
// CHECK: gpu.module @f_kernel_0
// CHECK: gpu.func @f_kernel_0() kernel
// A kernel whose location is named takes the name in place of "kernel".
// CHECK: gpu.launch_func @g_lsh_attention_3::@g_lsh_attention_3
// CHECK: gpu.module @g_lsh_attention_3
// CHECK: gpu.func @g_lsh_attention_3() kernel
// Names that are not identifiers (from other front ends) are not used.
// CHECK: gpu.launch_func @h_kernel_4::@h_kernel_4
// CHECK: gpu.module @h_kernel_4
module attributes {gpu.container_module} {
  func.func @f() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @f_kernel::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @f_kernel_0::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @f_kernel {
    gpu.func @f_kernel() kernel {
      gpu.return
    }
  }
  gpu.module @f_kernel_0 {
    gpu.func @f_kernel() kernel {
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @g() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @g_kernel_3::@g_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @g_kernel_3 {
    gpu.func @g_kernel() kernel {
      gpu.return
    } loc(fused["x.mlir":1:1, "lsh_attention"("x.mlir":2:2)])
  }
}

// -----

module attributes {gpu.container_module} {
  func.func @h() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @h_kernel_4::@h_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @h_kernel_4 {
    gpu.func @h_kernel() kernel {
      gpu.return
    } loc("jit(f)/dot"("x.mlir":3:3))
  }
}
