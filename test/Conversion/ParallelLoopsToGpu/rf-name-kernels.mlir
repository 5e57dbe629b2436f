// RUN: reformer-opt %s --rf-name-kernels | FileCheck %s

// Each outlined kernel takes its module's name, and its launch follows.
// CHECK-LABEL: func.func @f
// CHECK: gpu.launch_func @f_kernel::@f_kernel
// CHECK: gpu.launch_func @f_kernel_0::@f_kernel_0
// CHECK: gpu.module @f_kernel
// CHECK: gpu.func @f_kernel() kernel
// CHECK: gpu.module @f_kernel_0
// CHECK: gpu.func @f_kernel_0() kernel
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
