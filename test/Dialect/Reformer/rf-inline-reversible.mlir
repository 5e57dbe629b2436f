// RUN: reformer-opt %s --rf-inline-reversible | FileCheck %s

// y1 = x1 + F(x2), y2 = x2 + G(y1): G reads y1, not x1 or x2.
// CHECK-LABEL: func.func @block
// CHECK-SAME: (%[[X1:.+]]: tensor<1x8x4xf32>, %[[X2:.+]]: tensor<1x8x4xf32>, %[[G:.+]]: tensor<4xf32>, %[[B:.+]]: tensor<4xf32>)
// CHECK-NOT: reformer.reversible
// CHECK: %[[F:.+]] = reformer.layer_norm %[[X2]], %[[G]], %[[B]]
// CHECK: %[[Y1:.+]] = arith.addf %[[X1]], %[[F]] : tensor<1x8x4xf32>
// CHECK: %[[GY:.+]] = arith.negf %[[Y1]]
// CHECK: %[[Y2:.+]] = arith.addf %[[X2]], %[[GY]] : tensor<1x8x4xf32>
// CHECK: return %[[Y1]], %[[Y2]]
func.func @block(%x1: tensor<1x8x4xf32>, %x2: tensor<1x8x4xf32>, %g: tensor<4xf32>, %b: tensor<4xf32>)
    -> (tensor<1x8x4xf32>, tensor<1x8x4xf32>) {
  %y1, %y2 = reformer.reversible %x1, %x2 : tensor<1x8x4xf32> f {
  ^bb0(%a: tensor<1x8x4xf32>):
    %n = reformer.layer_norm %a, %g, %b : (tensor<1x8x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x8x4xf32>
    reformer.yield %n : tensor<1x8x4xf32>
  } g {
  ^bb0(%a: tensor<1x8x4xf32>):
    %n = arith.negf %a : tensor<1x8x4xf32>
    reformer.yield %n : tensor<1x8x4xf32>
  }
  return %y1, %y2 : tensor<1x8x4xf32>, tensor<1x8x4xf32>
}

// Stacked blocks chain through their outputs.
// CHECK-LABEL: func.func @stack
// CHECK-NOT: reformer.reversible
// CHECK-COUNT-4: arith.addf
func.func @stack(%x: tensor<1x8x4xf32>) -> tensor<1x8x4xf32> {
  %a1, %a2 = reformer.reversible %x, %x : tensor<1x8x4xf32> f {
  ^bb0(%a: tensor<1x8x4xf32>):
    reformer.yield %a : tensor<1x8x4xf32>
  } g {
  ^bb0(%a: tensor<1x8x4xf32>):
    reformer.yield %a : tensor<1x8x4xf32>
  }
  %b1, %b2 = reformer.reversible %a1, %a2 : tensor<1x8x4xf32> f {
  ^bb0(%a: tensor<1x8x4xf32>):
    reformer.yield %a : tensor<1x8x4xf32>
  } g {
  ^bb0(%a: tensor<1x8x4xf32>):
    reformer.yield %a : tensor<1x8x4xf32>
  }
  return %b2 : tensor<1x8x4xf32>
}
