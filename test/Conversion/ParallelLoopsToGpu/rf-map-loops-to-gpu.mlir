// RUN: reformer-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(func.func(rf-map-loops-to-gpu{threads=128}))' | FileCheck %s
// RUN: reformer-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(func.func(rf-map-loops-to-gpu{threads=128},convert-parallel-loops-to-gpu,canonicalize))' | FileCheck %s --check-prefix=LAUNCH

// A plain 2-D loop collapses into one dimension of 16 * 300 = 4800
// iterations, cut into tiles of 128 threads (38 blocks, the last guarded).
// CHECK-LABEL: func.func @plain
// CHECK: scf.parallel (%[[T:.*]]) = (%{{.*}}) to (%{{.*}}) step (%[[C128:.*]])
// CHECK: scf.parallel (%[[J:.*]]) =
// CHECK: scf.if
// CHECK: memref.load
// CHECK: memref.store
// CHECK: mapping = [#gpu.loop_dim_map<processor = thread_x
// CHECK: mapping = [#gpu.loop_dim_map<processor = block_x
// LAUNCH-LABEL: func.func @plain
// LAUNCH: gpu.launch blocks({{.*}}) in ({{.*}} = %c38, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}) threads({{.*}}) in ({{.*}} = %c128, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}})
func.func @plain(%a: memref<16x300xf32>, %b: memref<16x300xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c300 = arith.constant 300 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c16, %c300) step (%c1, %c1) {
    %x = memref.load %a[%i, %j] : memref<16x300xf32>
    memref.store %x, %b[%i, %j] : memref<16x300xf32>
    scf.reduce
  }
  return
}

// -----

// A loop whose body allocates scratch and holds nested parallel loops: its
// iterations map to blocks and the nested loops run serially on one thread.
// The scratch becomes a slot (256 bytes) of one host buffer per iteration,
// so the kernel calls no device-side malloc.
// CHECK-LABEL: func.func @scratch
// CHECK: %[[BUF:.*]] = memref.alloc() {alignment = 64 : i64} : memref<1024xi8>
// CHECK: scf.parallel (%[[I:.*]]) =
// CHECK: %[[SLOT:.*]] = arith.muli %{{.*}}, %c256
// CHECK: memref.view %[[BUF]][%{{.*}}][] : memref<1024xi8> to memref<64xf32>
// CHECK-NOT: memref.alloc
// CHECK: scf.for
// CHECK: scf.for
// CHECK-NOT: scf.parallel
// CHECK-NOT: memref.dealloc
// CHECK: mapping = [#gpu.loop_dim_map<processor = block_x
// CHECK: memref.dealloc %[[BUF]]
// LAUNCH-LABEL: func.func @scratch
// LAUNCH: gpu.launch blocks({{.*}}) in ({{.*}} = %c4, {{.*}}) threads({{.*}}) in ({{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}})
func.func @scratch(%a: memref<4x64xf32>, %b: memref<4x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %t = memref.alloc() : memref<64xf32>
    scf.parallel (%j) = (%c0) to (%c64) step (%c1) {
      %x = memref.load %a[%i, %j] : memref<4x64xf32>
      memref.store %x, %t[%j] : memref<64xf32>
      scf.reduce
    }
    scf.parallel (%j) = (%c0) to (%c64) step (%c1) {
      %x = memref.load %t[%j] : memref<64xf32>
      memref.store %x, %b[%i, %j] : memref<4x64xf32>
      scf.reduce
    }
    memref.dealloc %t : memref<64xf32>
    scf.reduce
  }
  return
}

// -----

// Serial host code that touches buffers (a scalar loss accumulation) moves
// into a one-iteration loop, i.e. a one-thread kernel; allocation stays on
// the host.
// CHECK-LABEL: func.func @serial
// CHECK: %[[ACC:.*]] = memref.alloc() : memref<f32>
// CHECK: scf.parallel
// CHECK: memref.store %{{.*}}, %[[ACC]][]
// CHECK: scf.for
// CHECK: memref.load %[[ACC]][]
// CHECK: memref.store %{{.*}}, %arg1[]
// CHECK: memref.dealloc %[[ACC]]
// LAUNCH-LABEL: func.func @serial
// LAUNCH: gpu.launch
// LAUNCH-NOT: gpu.launch
func.func @serial(%a: memref<8xf32>, %out: memref<f32> {reformer.output = "loss"}) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %acc = memref.alloc() : memref<f32>
  memref.store %zero, %acc[] : memref<f32>
  scf.for %i = %c0 to %c8 step %c1 {
    %x = memref.load %a[%i] : memref<8xf32>
    %s = memref.load %acc[] : memref<f32>
    %t = arith.addf %s, %x : f32
    memref.store %t, %acc[] : memref<f32>
  }
  %total = memref.load %acc[] : memref<f32>
  %half = arith.constant 0.5 : f32
  %scaled = arith.mulf %total, %half : f32
  memref.store %scaled, %out[] : memref<f32>
  memref.dealloc %acc : memref<f32>
  return
}

// -----

// A scalar input read on the host (a learning rate) is read inside the
// loop that uses it instead: the host cannot read device memory.
// CHECK-LABEL: func.func @scalar_input
// LAUNCH-LABEL: func.func @scalar_input
// CHECK-NOT: memref.load %arg0
// CHECK: scf.parallel
// CHECK: memref.load %arg0[]
// CHECK: arith.mulf
func.func @scalar_input(%lr: memref<f32>, %p: memref<128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %rate = memref.load %lr[] : memref<f32>
  scf.parallel (%i) = (%c0) to (%c128) step (%c1) {
    %x = memref.load %p[%i] : memref<128xf32>
    %y = arith.mulf %x, %rate : f32
    memref.store %y, %p[%i] : memref<128xf32>
    scf.reduce
  }
  return
}

// -----

// A value computed from device memory that the host itself needs (here as
// a loop bound) cannot be produced by a kernel.
func.func @host_needs_device_value(%n: memref<index> {reformer.output = "n"}, %p: memref<128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{rf-map-loops-to-gpu: this value is computed in device memory and used by the host afterwards}}
  %bound = memref.load %n[] : memref<index>
  scf.parallel (%i) = (%c0) to (%bound) step (%c1) {
    %x = memref.load %p[%i] : memref<128xf32>
    memref.store %x, %p[%i] : memref<128xf32>
    scf.reduce
  }
  return
}

// -----

// Launches built before (the tensor-core matmuls) are host work: neither
// they nor the host loop around them are wrapped in a one-thread kernel,
// while the loop's serial store still is.
// CHECK-LABEL: func.func @launches
// CHECK: scf.for
// CHECK: scf.parallel
// CHECK: memref.store
// CHECK: mapping = [#gpu.loop_dim_map<processor = block_x
// CHECK-NEXT: gpu.launch
// CHECK-NOT: scf.parallel
// CHECK: gpu.terminator
func.func @launches(%a: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %one = arith.constant 1.0 : f32
  scf.for %i = %c0 to %c4 step %c1 {
    memref.store %one, %a[%i] : memref<4xf32>
    gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1)
               threads(%tx, %ty, %tz) in (%u = %c4, %v = %c1, %w = %c1) {
      memref.store %one, %a[%tx] : memref<4xf32>
      gpu.terminator
    }
  }
  return
}
