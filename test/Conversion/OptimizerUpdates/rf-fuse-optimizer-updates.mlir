// RUN: reformer-opt %s --split-input-file \
// RUN:   --pass-pipeline='builtin.module(func.func(rf-fuse-optimizer-updates))' \
// RUN:   | FileCheck %s
// RUN: reformer-opt %s --split-input-file \
// RUN:   --pass-pipeline='builtin.module(func.func(rf-fuse-optimizer-updates{max-kernel-param-bytes=300}))' \
// RUN:   | FileCheck %s --check-prefix=BUDGET

#id1 = affine_map<(d0) -> (d0)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// Three updates (12, 5 and 8 elements) become one loop over 25: the first
// comparison splits off the first update, the second the other two; each
// update reads and writes its buffers, viewed as one dimension, at its
// offset. Reading an update's input in between does not keep it in place.
// CHECK-LABEL: func.func @three
// CHECK-SAME: (%[[P0:[^:]+]]: memref<4x3xf32>, %[[G0:[^:]+]]: memref<4x3xf32>, %[[O0:[^:]+]]: memref<4x3xf32>, %[[P1:[^:]+]]: memref<5xf32>, %[[G1:[^:]+]]: memref<5xf32>, %[[O1:[^:]+]]: memref<5xf32>, %[[P2:[^:]+]]: memref<2x2x2xf32>, %[[G2:[^:]+]]: memref<2x2x2xf32>, %[[O2:[^:]+]]: memref<2x2x2xf32>, %[[LR:[^:]+]]: f32)
// CHECK: memref.load %[[P0]]
// CHECK-DAG: %[[FP0:.*]] = memref.collapse_shape %[[P0]] {{\[\[}}0, 1]] : memref<4x3xf32> into memref<12xf32>
// CHECK-DAG: %[[FG0:.*]] = memref.collapse_shape %[[G0]] {{\[\[}}0, 1]]
// CHECK-DAG: %[[FO0:.*]] = memref.collapse_shape %[[O0]] {{\[\[}}0, 1]]
// CHECK-DAG: %[[FP2:.*]] = memref.collapse_shape %[[P2]] {{\[\[}}0, 1, 2]] : memref<2x2x2xf32> into memref<8xf32>
// CHECK-DAG: %[[FG2:.*]] = memref.collapse_shape %[[G2]] {{\[\[}}0, 1, 2]]
// CHECK-DAG: %[[FO2:.*]] = memref.collapse_shape %[[O2]] {{\[\[}}0, 1, 2]]
// CHECK-DAG: %[[TOTAL:.*]] = arith.constant 25 : index
// CHECK: scf.parallel (%[[I:.*]]) = (%{{.*}}) to (%[[TOTAL]]) step (%{{.*}}) {
// CHECK: %[[C12:.*]] = arith.constant 12 : index
// CHECK: %[[IN0:.*]] = arith.cmpi ult, %[[I]], %[[C12]]
// CHECK: scf.if %[[IN0]] {
// CHECK: %[[A:.*]] = memref.load %[[FP0]][%[[I]]]
// CHECK: %[[B:.*]] = memref.load %[[FG0]][%[[I]]]
// CHECK: %[[STEP:.*]] = arith.mulf %[[LR]], %[[B]]
// CHECK: %[[NEW:.*]] = arith.subf %[[A]], %[[STEP]]
// CHECK: memref.store %[[NEW]], %[[FO0]][%[[I]]]
// CHECK: } else {
// CHECK: %[[C17:.*]] = arith.constant 17 : index
// CHECK: %[[IN1:.*]] = arith.cmpi ult, %[[I]], %[[C17]]
// CHECK: scf.if %[[IN1]] {
// CHECK: %[[J1:.*]] = arith.subi %[[I]], %{{.*}}
// CHECK: memref.load %[[P1]][%[[J1]]]
// CHECK: memref.load %[[G1]][%[[J1]]]
// CHECK: memref.store %{{.*}}, %[[O1]][%[[J1]]]
// CHECK: } else {
// CHECK: %[[J2:.*]] = arith.subi %[[I]], %{{.*}}
// CHECK: memref.load %[[FP2]][%[[J2]]]
// CHECK: memref.store %{{.*}}, %[[FO2]][%[[J2]]]
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @three(%p0: memref<4x3xf32>, %g0: memref<4x3xf32>, %o0: memref<4x3xf32>,
                 %p1: memref<5xf32>, %g1: memref<5xf32>, %o1: memref<5xf32>,
                 %p2: memref<2x2x2xf32>, %g2: memref<2x2x2xf32>, %o2: memref<2x2x2xf32>,
                 %lr: f32) -> f32 {
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%p0, %g0 : memref<4x3xf32>, memref<4x3xf32>) outs(%o0 : memref<4x3xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %s = arith.mulf %lr, %g : f32
    %n = arith.subf %p, %s : f32
    linalg.yield %n : f32
  }
  %c0 = arith.constant 0 : index
  %x = memref.load %p0[%c0, %c0] : memref<4x3xf32>
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p1, %g1 : memref<5xf32>, memref<5xf32>) outs(%o1 : memref<5xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %s = arith.mulf %lr, %g : f32
    %n = arith.subf %p, %s : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id3, #id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p2, %g2 : memref<2x2x2xf32>, memref<2x2x2xf32>) outs(%o2 : memref<2x2x2xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %s = arith.mulf %lr, %g : f32
    %n = arith.subf %p, %s : f32
    linalg.yield %n : f32
  }
  return %x : f32
}

// -----

#id1 = affine_map<(d0) -> (d0)>

// An update stays where it is when an op between it and the last update
// writes its input (the store to %g0), reads its output (the load of %o1,
// through a view) or may do either (a call given its output); the others
// still merge.
// CHECK-LABEL: func.func @blocked
// CHECK: linalg.generic
// CHECK-SAME: ins(%arg0, %arg1
// CHECK: memref.store
// CHECK: linalg.generic
// CHECK-SAME: ins(%arg3, %arg4
// CHECK: memref.subview %arg5
// CHECK: memref.load
// CHECK: linalg.generic
// CHECK-SAME: ins(%arg6, %arg7
// CHECK: call @use
// CHECK: scf.parallel
// CHECK-NOT: linalg.generic
// CHECK: return
func.func private @use(memref<4xf32>)
func.func @blocked(%p0: memref<4xf32>, %g0: memref<4xf32>, %o0: memref<4xf32>,
                   %p1: memref<4xf32>, %g1: memref<4xf32>, %o1: memref<4xf32>,
                   %p2: memref<4xf32>, %g2: memref<4xf32>, %o2: memref<4xf32>,
                   %p3: memref<4xf32>, %g3: memref<4xf32>, %o3: memref<4xf32>,
                   %p4: memref<4xf32>, %g4: memref<4xf32>, %o4: memref<4xf32>)
    -> f32 {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p0, %g0 : memref<4xf32>, memref<4xf32>) outs(%o0 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  memref.store %zero, %g0[%c0] : memref<4xf32>
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p1, %g1 : memref<4xf32>, memref<4xf32>) outs(%o1 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  %view = memref.subview %o1[1] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1], offset: 1>>
  %x = memref.load %view[%c0] : memref<2xf32, strided<[1], offset: 1>>
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p2, %g2 : memref<4xf32>, memref<4xf32>) outs(%o2 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  func.call @use(%o2) : (memref<4xf32>) -> ()
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p3, %g3 : memref<4xf32>, memref<4xf32>) outs(%o3 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p4, %g4 : memref<4xf32>, memref<4xf32>) outs(%o4 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  return %x : f32
}

// -----

#id1 = affine_map<(d0) -> (d0)>

// Untouched: a lone update, an update inside a loop, an op without the
// tag.
// CHECK-LABEL: func.func @alone
// CHECK-NOT: scf.parallel
// CHECK: scf.for
// CHECK: linalg.generic
// CHECK: linalg.generic
// CHECK: linalg.generic
// CHECK-NOT: scf.parallel
// CHECK: return
func.func @alone(%p0: memref<4xf32>, %g0: memref<4xf32>, %o0: memref<4xf32>,
                 %p1: memref<4xf32>, %g1: memref<4xf32>, %o1: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %c1 step %c1 {
    linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
        ins(%p0, %g0 : memref<4xf32>, memref<4xf32>) outs(%o0 : memref<4xf32>)
        attrs = {reformer.optimizer_update} {
    ^bb0(%p: f32, %g: f32, %o: f32):
      %n = arith.subf %p, %g : f32
      linalg.yield %n : f32
    }
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p1, %g1 : memref<4xf32>, memref<4xf32>) outs(%o1 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p0, %g1 : memref<4xf32>, memref<4xf32>) outs(%o0 : memref<4xf32>) {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.addf %p, %g : f32
    linalg.yield %n : f32
  }
  return
}

// -----

#id1 = affine_map<(d0) -> (d0)>

// Kernel arguments within the budget: three 1-D buffers (40 bytes of
// descriptor each) and the captured scalar (24) per update: 144 + 120
// bytes fit 300, a third update does not, so four updates make two loops
// of two.
// BUDGET-LABEL: func.func @budget
// BUDGET: scf.parallel ({{.*}}) = ({{.*}}) to (%c8)
// BUDGET: scf.parallel ({{.*}}) = ({{.*}}) to (%c8_{{[0-9]+}})
// BUDGET-NOT: linalg.generic
// BUDGET: return
// Without a small budget, one loop.
// CHECK-LABEL: func.func @budget
// CHECK: scf.parallel ({{.*}}) = ({{.*}}) to (%c16)
// CHECK-NOT: scf.parallel
// CHECK: return
func.func @budget(%p0: memref<4xf32>, %g0: memref<4xf32>, %o0: memref<4xf32>,
                  %p1: memref<4xf32>, %g1: memref<4xf32>, %o1: memref<4xf32>,
                  %p2: memref<4xf32>, %g2: memref<4xf32>, %o2: memref<4xf32>,
                  %p3: memref<4xf32>, %g3: memref<4xf32>, %o3: memref<4xf32>,
                  %lr: f32) {
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p0, %g0 : memref<4xf32>, memref<4xf32>) outs(%o0 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %lr : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p1, %g1 : memref<4xf32>, memref<4xf32>) outs(%o1 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %lr : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p2, %g2 : memref<4xf32>, memref<4xf32>) outs(%o2 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %lr : f32
    linalg.yield %n : f32
  }
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p3, %g3 : memref<4xf32>, memref<4xf32>) outs(%o3 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %lr : f32
    linalg.yield %n : f32
  }
  return
}

// -----

#id1 = affine_map<(d0) -> (d0)>

// A gradient freed right after its update is freed after the merged loop.
// CHECK-LABEL: func.func @frees
// CHECK: %[[G0:.*]] = memref.alloc() : memref<4xf32>
// CHECK: linalg.fill {{.*}} outs(%[[G0]]
// CHECK-NOT: memref.dealloc
// CHECK: scf.parallel
// CHECK: memref.load %[[G0]]
// CHECK: scf.reduce
// CHECK-NEXT: }
// CHECK-NEXT: memref.dealloc %[[G0]]
// CHECK-NEXT: return
func.func @frees(%p0: memref<4xf32>, %o0: memref<4xf32>,
                 %p1: memref<4xf32>, %g1: memref<4xf32>, %o1: memref<4xf32>) {
  %one = arith.constant 1.0 : f32
  %g0 = memref.alloc() : memref<4xf32>
  linalg.fill ins(%one : f32) outs(%g0 : memref<4xf32>)
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p0, %g0 : memref<4xf32>, memref<4xf32>) outs(%o0 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  memref.dealloc %g0 : memref<4xf32>
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%p1, %g1 : memref<4xf32>, memref<4xf32>) outs(%o1 : memref<4xf32>)
      attrs = {reformer.optimizer_update} {
  ^bb0(%p: f32, %g: f32, %o: f32):
    %n = arith.subf %p, %g : f32
    linalg.yield %n : f32
  }
  return
}
