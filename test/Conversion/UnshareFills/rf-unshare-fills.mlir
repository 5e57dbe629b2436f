// RUN: reformer-opt %s --split-input-file --rf-unshare-fills | FileCheck %s

// Two matmuls accumulate into one zero-filled tensor (as after cse): each
// gets its own empty tensor and fill, and the read-only use keeps the
// original.
// CHECK-LABEL: func.func @shared
// CHECK: %[[E0:.+]] = tensor.empty() : tensor<8x8xf32>
// CHECK: %[[F0:.+]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E0]] : tensor<8x8xf32>)
// CHECK: %[[E1:.+]] = tensor.empty() : tensor<8x8xf32>
// CHECK: %[[F1:.+]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E1]] : tensor<8x8xf32>)
// CHECK: linalg.matmul {{.*}} outs(%[[F1]] : tensor<8x8xf32>)
// CHECK: %[[E2:.+]] = tensor.empty() : tensor<8x8xf32>
// CHECK: %[[F2:.+]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E2]] : tensor<8x8xf32>)
// CHECK: linalg.matmul {{.*}} outs(%[[F2]] : tensor<8x8xf32>)
// CHECK: arith.addf {{.*}}%[[F0]]
func.func @shared(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>) -> (tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<8x8xf32>) -> tensor<8x8xf32>
  %x = linalg.matmul ins(%a, %b : tensor<8x8xf32>, tensor<8x8xf32>) outs(%f : tensor<8x8xf32>) -> tensor<8x8xf32>
  %y = linalg.matmul ins(%b, %a : tensor<8x8xf32>, tensor<8x8xf32>) outs(%f : tensor<8x8xf32>) -> tensor<8x8xf32>
  %z = arith.addf %a, %f : tensor<8x8xf32>
  return %x, %y, %z : tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>
}

// -----

// Two destinations, no reader: the first keeps the fill, the second gets
// a copy of it; one destination alone is left as it is.
// CHECK-LABEL: func.func @two
// CHECK: %[[F0:.+]] = linalg.fill
// CHECK: linalg.matmul {{.*}} outs(%[[F0]] : tensor<8x8xf32>)
// CHECK: %[[F1:.+]] = linalg.fill
// CHECK: linalg.matmul {{.*}} outs(%[[F1]] : tensor<8x8xf32>)
func.func @two(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>) -> (tensor<8x8xf32>, tensor<8x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<8x8xf32>) -> tensor<8x8xf32>
  %x = linalg.matmul ins(%a, %b : tensor<8x8xf32>, tensor<8x8xf32>) outs(%f : tensor<8x8xf32>) -> tensor<8x8xf32>
  %y = linalg.matmul ins(%b, %a : tensor<8x8xf32>, tensor<8x8xf32>) outs(%f : tensor<8x8xf32>) -> tensor<8x8xf32>
  return %x, %y : tensor<8x8xf32>, tensor<8x8xf32>
}

// -----

// CHECK-LABEL: func.func @single
// CHECK-COUNT-1: linalg.fill
// CHECK-NOT: linalg.fill
func.func @single(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<8x8xf32>) -> tensor<8x8xf32>
  %x = linalg.matmul ins(%a, %b : tensor<8x8xf32>, tensor<8x8xf32>) outs(%f : tensor<8x8xf32>) -> tensor<8x8xf32>
  return %x : tensor<8x8xf32>
}
