// RUN: reformer-opt %s --rf-emit-entry-points --split-input-file --verify-diagnostics | FileCheck %s

// CHECK: llvm.func @reformer_entry_f(%[[ARGV:.+]]: !llvm.ptr)
// CHECK: %[[P0:.+]] = llvm.getelementptr %[[ARGV]][0] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[A0:.+]] = llvm.load %[[P0]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[P1:.+]] = llvm.getelementptr %[[ARGV]][1]
// CHECK: %[[A1:.+]] = llvm.load %[[P1]]
// CHECK: llvm.call @f(%[[A0]], %[[A1]]) : (!llvm.ptr, !llvm.ptr) -> ()
// CHECK: llvm.mlir.global external constant @reformer_abi("reformer-abi 1\0Afunction f reformer_entry_f 2\0Ainput x f32 4\0Aoutput y f32 4\0A\00")
// CHECK-NOT: reformer.abi
module attributes {reformer.abi = "reformer-abi 1\0Afunction f reformer_entry_f 2\0Ainput x f32 4\0Aoutput y f32 4\0A"} {
  llvm.func @f(%x: !llvm.ptr, %y: !llvm.ptr) {
    llvm.return
  }
}

// -----

// Private functions with a body become internal (not exported from the
// shared library); private declarations stay external.
// CHECK-LABEL: llvm.func @g(
// CHECK: llvm.func internal @g_blocks(
// CHECK: llvm.func @helper(
// CHECK-SAME: sym_visibility = "private"
// CHECK-NOT: internal @helper
module attributes {reformer.abi = "reformer-abi 1\0Afunction g reformer_entry_g 1\0Ainput x f32 4\0A"} {
  llvm.func @g(%x: !llvm.ptr) {
    llvm.call @g_blocks(%x) : (!llvm.ptr) -> ()
    llvm.call @helper() : () -> ()
    llvm.return
  }
  llvm.func @g_blocks(%x: !llvm.ptr) attributes {sym_visibility = "private"} {
    llvm.return
  }
  llvm.func @helper() attributes {sym_visibility = "private"}
}

// -----

// A layer's function (reformer.layer) is kept out of line: LLVM compiles it
// once, not once per layer that calls it. Its marker goes.
// CHECK-LABEL: llvm.func @h(
// CHECK: llvm.func internal @layer(
// CHECK-SAME: no_inline
// CHECK-NOT: reformer.layer
// CHECK: llvm.func internal @other(
// CHECK-NOT: no_inline
module attributes {reformer.abi = "reformer-abi 1\0Afunction h reformer_entry_h 1\0Ainput x f32 4\0A"} {
  llvm.func @h(%x: !llvm.ptr) {
    llvm.call @layer(%x) : (!llvm.ptr) -> ()
    llvm.call @layer(%x) : (!llvm.ptr) -> ()
    llvm.call @other(%x) : (!llvm.ptr) -> ()
    llvm.return
  }
  llvm.func @layer(%x: !llvm.ptr) attributes {reformer.layer, sym_visibility = "private"} {
    llvm.return
  }
  llvm.func @other(%x: !llvm.ptr) attributes {sym_visibility = "private"} {
    llvm.return
  }
}

// -----

// expected-error @+1 {{cannot emit the entry point of 'f': expected an llvm.func taking 2 pointers (lower with bare-pointer memrefs and results as out-parameters)}}
module attributes {reformer.abi = "reformer-abi 1\0Afunction f reformer_entry_f 2\0A"} {
  llvm.func @f(%x: !llvm.ptr, %n: i64) {
    llvm.return
  }
}

// -----

// expected-error @+1 {{no 'reformer.abi' attribute: run rf-record-abi before lowering}}
module {
}
