// RUN: reformer-opt %s --rf-record-abi --split-input-file --verify-diagnostics | FileCheck %s

// One line per argument in call order, results last; names from the
// argument attributes, else their position; inputs become read-only.
// CHECK: module attributes {reformer.abi = "reformer-abi 1\0Afunction f reformer_entry_f 4\0Ainput tokens i32 2x8\0Aparam w f32 8x4\0Ainput arg2 bf16 3\0Aoutput logits f32 scalar\0A"}
// CHECK: func.func @f(%{{.*}}: tensor<2x8xi32> {bufferization.writable = false, reformer.input = "tokens"}, %{{.*}}: tensor<8x4xf32> {bufferization.writable = false, reformer.param = "w"}, %{{.*}}: tensor<3xbf16> {bufferization.writable = false})
// CHECK-NOT: reformer_entry_helper
module {
  func.func @f(%t: tensor<2x8xi32> {reformer.input = "tokens"}, %w: tensor<8x4xf32> {reformer.param = "w"},
               %x: tensor<3xbf16>) -> (tensor<f32> {reformer.output = "logits"}) {
    %c = arith.constant dense<1.0> : tensor<f32>
    return %c : tensor<f32>
  }
  func.func private @helper(%x: tensor<?xf32>) -> tensor<?xf32> {
    return %x : tensor<?xf32>
  }
}

// -----

// A layer's function is not exported, but its tensor arguments are
// read-only too: writing results over them would mean copies at every call.
// CHECK-LABEL: func.func private @layer(
// CHECK-SAME: %{{.*}}: tensor<4xf32> {bufferization.writable = false}, %{{.*}}: tensor<4xf32> {bufferization.writable = false}, %{{.*}}: i64)
// CHECK-LABEL: func.func private @helper(
// CHECK-NOT: bufferization.writable
module {
  func.func private @layer(%x1: tensor<4xf32>, %x2: tensor<4xf32>, %n: i64)
      -> (tensor<4xf32>, tensor<4xf32>) attributes {reformer.layer} {
    return %x1, %x2 : tensor<4xf32>, tensor<4xf32>
  }
  func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// expected-error @+1 {{'func.func' op cannot be exported: argument 0 has type 'tensor<?x8xf32>'; the C ABI takes statically shaped tensors of f32, f64, f16, bf16, i1, i32 or i64}}
func.func @dynamic(%x: tensor<?x8xf32>) {
  return
}

// -----

// expected-error @+1 {{'func.func' op cannot be exported: result 0 has type 'index'}}
func.func @scalar() -> index {
  %c = arith.constant 0 : index
  return %c : index
}
