// RUN: reformer-opt %s --split-input-file \
// RUN:   --pass-pipeline='builtin.module(func.func(rf-place-gradients-in-outputs))' \
// RUN:   | FileCheck %s

#id1 = affine_map<(d0) -> (d0)>

// The gradient is accumulated in the new parameter's output buffer (through
// a view too), and the update reads it there; its allocation and free go.
// CHECK-LABEL: func.func @placed
// CHECK-SAME: (%[[P:[^:]+]]: memref<4xf32>, %[[X:[^:]+]]: memref<4xf32>, %[[OUT:[^:]+]]: memref<4xf32>)
// CHECK-NOT: memref.alloc
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[OUT]] : memref<4xf32>)
// CHECK: %[[VIEW:.*]] = memref.subview %[[OUT]][0] [2] [1]
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[VIEW]]
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[X]] : memref<4xf32>) outs(%[[OUT]] : memref<4xf32>)
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[P]], %[[OUT]] : memref<4xf32>, memref<4xf32>) outs(%[[OUT]] : memref<4xf32>)
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @placed(%p: memref<4xf32>, %x: memref<4xf32>, %out: memref<4xf32>) {
  %zero = arith.constant 0.0 : f32
  %g = memref.alloc() : memref<4xf32>
  linalg.fill ins(%zero : f32) outs(%g : memref<4xf32>)
  %half = memref.subview %g[0] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1]>>
  linalg.fill ins(%zero : f32) outs(%half : memref<2xf32, strided<[1]>>)
  linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
      ins(%x : memref<4xf32>) outs(%g : memref<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p, %g : memref<4xf32>, memref<4xf32>) outs(%out : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.subf %a, %b : f32
    linalg.yield %n : f32
  }
  memref.dealloc %g : memref<4xf32>
  return
}

// -----

#id1 = affine_map<(d0) -> (d0)>

// Left alone: the output buffer used by another op; the gradient read after
// the update (through a view); a gradient of another shape; an op without
// the tag.
// CHECK-LABEL: func.func @kept
// CHECK: %[[G0:.*]] = memref.alloc() : memref<4xf32>
// CHECK: %[[G1:.*]] = memref.alloc() : memref<4xf32>
// CHECK: %[[G2:.*]] = memref.alloc() : memref<2x2xf32>
// CHECK: %[[G3:.*]] = memref.alloc() : memref<4xf32>
// CHECK: ins(%{{.*}}, %[[G0]] : {{.*}}) outs(%arg1 :
// CHECK: ins(%{{.*}}, %[[G1]] : {{.*}}) outs(%arg2 :
// CHECK: %[[FLAT:.*]] = memref.collapse_shape %[[G2]]
// CHECK: ins(%{{.*}}, %[[FLAT]] : {{.*}}) outs(%arg3 :
// CHECK: ins(%{{.*}}, %[[G3]] : {{.*}}) outs(%arg4 :
// CHECK-COUNT-4: memref.dealloc
func.func @kept(%p: memref<4xf32>, %out0: memref<4xf32>, %out1: memref<4xf32>,
                %out2: memref<4xf32>, %out3: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %g0 = memref.alloc() : memref<4xf32>
  %g1 = memref.alloc() : memref<4xf32>
  %g2 = memref.alloc() : memref<2x2xf32>
  %g3 = memref.alloc() : memref<4xf32>
  memref.store %zero, %out0[%c0] : memref<4xf32>
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p, %g0 : memref<4xf32>, memref<4xf32>) outs(%out0 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.subf %a, %b : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p, %g1 : memref<4xf32>, memref<4xf32>) outs(%out1 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.subf %a, %b : f32
    linalg.yield %n : f32
  }
  %view = memref.subview %g1[1] [1] [1] : memref<4xf32> to memref<1xf32, strided<[1], offset: 1>>
  %x = memref.load %view[%c0] : memref<1xf32, strided<[1], offset: 1>>
  %flat = memref.collapse_shape %g2 [[0, 1]] : memref<2x2xf32> into memref<4xf32>
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p, %flat : memref<4xf32>, memref<4xf32>) outs(%out2 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.subf %a, %b : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p, %g3 : memref<4xf32>, memref<4xf32>) outs(%out3 : memref<4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.subf %a, %b : f32
    linalg.yield %n : f32
  }
  memref.dealloc %g0 : memref<4xf32>
  memref.dealloc %g1 : memref<4xf32>
  memref.dealloc %g2 : memref<2x2xf32>
  memref.dealloc %g3 : memref<4xf32>
  return %x : f32
}

// -----

#id1 = affine_map<(d0) -> (d0)>

// Left alone: the gradient escapes through an op that is not a view (an
// scf.if yielding it), whose result is read after the update.
// CHECK-LABEL: func.func @aliased
// CHECK: %[[G:.*]] = memref.alloc() : memref<4xf32>
// CHECK: linalg.generic {{.*}} ins(%arg0, %[[G]] : {{.*}}) outs(%arg1 :
func.func @aliased(%p: memref<4xf32>, %out: memref<4xf32>, %flag: i1) -> f32 {
  %c0 = arith.constant 0 : index
  %g = memref.alloc() : memref<4xf32>
  %alias = scf.if %flag -> memref<4xf32> {
    scf.yield %g : memref<4xf32>
  } else {
    scf.yield %g : memref<4xf32>
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p, %g : memref<4xf32>, memref<4xf32>) outs(%out : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.subf %a, %b : f32
    linalg.yield %n : f32
  }
  %x = memref.load %alias[%c0] : memref<4xf32>
  memref.dealloc %g : memref<4xf32>
  return %x : f32
}
