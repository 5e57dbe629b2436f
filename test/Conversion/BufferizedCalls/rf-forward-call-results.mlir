// RUN: reformer-opt %s --pass-pipeline='builtin.module(func.func(rf-forward-call-results))' | FileCheck %s

func.func private @fill(%out: memref<4xf32>)
func.func private @read(%in: memref<4xf32>)

// The call writes the caller's output directly; a later call may read it.
// CHECK-LABEL: func.func @forwarded(
// CHECK-SAME: %[[OUT:[^:]+]]: memref<4xf32>)
// CHECK-NOT: memref.alloc
// CHECK: call @fill(%[[OUT]])
// CHECK-NEXT: call @read(%[[OUT]])
// CHECK-NEXT: return
func.func @forwarded(%out: memref<4xf32>) {
  %a = memref.alloc() : memref<4xf32>
  call @fill(%a) : (memref<4xf32>) -> ()
  call @read(%a) : (memref<4xf32>) -> ()
  memref.copy %a, %out : memref<4xf32> to memref<4xf32>
  return
}

// The caller reads its output argument before the copy: it stays.
// CHECK-LABEL: func.func @output_read(
// CHECK: memref.alloc
// CHECK: memref.copy
func.func @output_read(%out: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %x = memref.load %out[%c0] : memref<4xf32>
  %a = memref.alloc() : memref<4xf32>
  call @fill(%a) : (memref<4xf32>) -> ()
  memref.copy %a, %out : memref<4xf32> to memref<4xf32>
  return %x : f32
}

// Something other than a call touches the buffer: it stays.
// CHECK-LABEL: func.func @not_only_calls(
// CHECK: memref.alloc
// CHECK: memref.copy
func.func @not_only_calls(%out: memref<4xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %a = memref.alloc() : memref<4xf32>
  call @fill(%a) : (memref<4xf32>) -> ()
  memref.store %v, %a[%c0] : memref<4xf32>
  memref.copy %a, %out : memref<4xf32> to memref<4xf32>
  return
}

// No call fills the buffer: nothing to forward.
// CHECK-LABEL: func.func @no_call(
// CHECK: memref.alloc
// CHECK: memref.copy
func.func @no_call(%out: memref<4xf32>) {
  %a = memref.alloc() : memref<4xf32>
  memref.copy %a, %out : memref<4xf32> to memref<4xf32>
  return
}
