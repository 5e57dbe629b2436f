// RUN: reformer-opt %s --pass-pipeline="builtin.module(func.func(rf-plan-arena))" --split-input-file | FileCheck %s
// RUN: reformer-opt %s --pass-pipeline="builtin.module(func.func(rf-plan-arena{report=1}))" --split-input-file -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// REPORT: remark: arena of 6144 bytes for 3 buffers of 10240 bytes; at most 6144 bytes live at once
// REPORT: remark: arena of 1024 bytes for 2 buffers of 1088 bytes; at most 1024 bytes live at once
// REPORT: remark: arena of 192 bytes for 2 buffers of 192 bytes; at most 192 bytes live at once
// REPORT-NOT: remark

// Largest first at the lowest free offset: %a at 0; %c (allocated after %a
// is freed) shares %a's bytes; %b, live with both, goes after them. One
// arena of 4096 + 2048 bytes replaces the three buffers and their frees.
// CHECK-LABEL: func.func @reuse
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 64 : i64} : memref<6144xi8>
// CHECK: %[[A:.*]] = memref.view %[[ARENA]][%c0{{.*}}][] : memref<6144xi8> to memref<1024xf32>
// CHECK: %[[B:.*]] = memref.view %[[ARENA]][%c4096{{.*}}][] : memref<6144xi8> to memref<512xf32>
// CHECK: call @use2(%[[A]], %[[B]])
// CHECK: %[[C:.*]] = memref.view %[[ARENA]][%c0{{.*}}][] : memref<6144xi8> to memref<1024xf32>
// CHECK: call @use2(%[[C]], %[[B]])
// CHECK-NOT: memref.dealloc
// CHECK: memref.dealloc %[[ARENA]] : memref<6144xi8>
// CHECK-NEXT: return
func.func private @use2(memref<1024xf32>, memref<512xf32>)
func.func @reuse() {
  %a = memref.alloc() : memref<1024xf32>
  %b = memref.alloc() : memref<512xf32>
  call @use2(%a, %b) : (memref<1024xf32>, memref<512xf32>) -> ()
  memref.dealloc %a : memref<1024xf32>
  %c = memref.alloc() : memref<1024xf32>
  call @use2(%c, %b) : (memref<1024xf32>, memref<512xf32>) -> ()
  memref.dealloc %b : memref<512xf32>
  memref.dealloc %c : memref<1024xf32>
  return
}

// -----

// A buffer of a serial loop's body lives for the whole loop; its bytes are
// reused once the loop is done (%e at offset 0 too). The arena takes the
// largest alignment asked for. Left alone: a parallel loop's buffer (each
// iteration needs its own), a dynamic size, a buffer not freed here.
// CHECK-LABEL: func.func @nested
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 128 : i64} : memref<1024xi8>
// CHECK: scf.for
// CHECK-NEXT: %[[OFF:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[L:.*]] = memref.view %[[ARENA]][%[[OFF]]][] : memref<1024xi8> to memref<256xf32>
// CHECK-NEXT: call @use1(%[[L]])
// CHECK-NEXT: }
// CHECK: scf.parallel
// CHECK-NEXT: %[[P:.*]] = memref.alloc() : memref<256xf32>
// CHECK: memref.dealloc %[[P]]
// CHECK: %[[D:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: memref.dealloc %[[D]]
// CHECK: memref.view %[[ARENA]][%c0{{.*}}][] : memref<1024xi8> to memref<16xf32>
// CHECK: %[[U:.*]] = memref.alloc() : memref<8xf32>
// CHECK: call @keep(%[[U]])
// CHECK-NEXT: memref.dealloc %[[ARENA]]
// CHECK-NEXT: return
func.func private @use1(memref<256xf32>)
func.func private @useDynamic(memref<?xf32>)
func.func private @use16(memref<16xf32>)
func.func private @keep(memref<8xf32>)
func.func @nested(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %i = %c0 to %c4 step %c1 {
    %l = memref.alloc() : memref<256xf32>
    func.call @use1(%l) : (memref<256xf32>) -> ()
    memref.dealloc %l : memref<256xf32>
  }
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %p = memref.alloc() : memref<256xf32>
    func.call @use1(%p) : (memref<256xf32>) -> ()
    memref.dealloc %p : memref<256xf32>
    scf.reduce
  }
  %d = memref.alloc(%n) : memref<?xf32>
  call @useDynamic(%d) : (memref<?xf32>) -> ()
  memref.dealloc %d : memref<?xf32>
  %e = memref.alloc() {alignment = 128 : i64} : memref<16xf32>
  call @use16(%e) : (memref<16xf32>) -> ()
  memref.dealloc %e : memref<16xf32>
  %u = memref.alloc() : memref<8xf32>
  call @keep(%u) : (memref<8xf32>) -> ()
  return
}

// -----

// Nothing to plan: no arena.
// CHECK-LABEL: func.func @none
// CHECK-NOT: memref.alloc
// CHECK: return
func.func @none(%x: memref<4xf32>) {
  return
}

// -----

// A buffer of an scf.if branch lives for the whole scf.if. Index elements
// take 8 bytes, i1 one byte each (64-byte slots). Left alone: a buffer
// freed in another block, one freed twice.
// CHECK-LABEL: func.func @branches
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 64 : i64} : memref<192xi8>
// CHECK: memref.view %[[ARENA]][%{{.*}}][] : memref<192xi8> to memref<16xindex>
// CHECK: scf.if
// CHECK: memref.view %[[ARENA]][%{{.*}}][] : memref<192xi8> to memref<3xi1>
// CHECK: %[[OTHER:.*]] = memref.alloc() : memref<4xf32>
// CHECK: scf.if
// CHECK: memref.dealloc %[[OTHER]]
// CHECK: %[[TWICE:.*]] = memref.alloc() : memref<2xf32>
// CHECK-COUNT-2: memref.dealloc %[[TWICE]]
// CHECK: memref.dealloc %[[ARENA]]
// CHECK-NEXT: return
func.func private @useIndex(memref<16xindex>)
func.func private @useBool(memref<3xi1>)
func.func private @use4(memref<4xf32>)
func.func private @use2f(memref<2xf32>)
func.func @branches(%c: i1) {
  %x = memref.alloc() : memref<16xindex>
  call @useIndex(%x) : (memref<16xindex>) -> ()
  scf.if %c {
    %b = memref.alloc() : memref<3xi1>
    func.call @useBool(%b) : (memref<3xi1>) -> ()
    memref.dealloc %b : memref<3xi1>
  }
  memref.dealloc %x : memref<16xindex>
  %o = memref.alloc() : memref<4xf32>
  call @use4(%o) : (memref<4xf32>) -> ()
  scf.if %c {
    memref.dealloc %o : memref<4xf32>
  }
  %t = memref.alloc() : memref<2xf32>
  call @use2f(%t) : (memref<2xf32>) -> ()
  memref.dealloc %t : memref<2xf32>
  memref.dealloc %t : memref<2xf32>
  return
}
