//===- LayerFunctions.h - Marking a layer's function ------------*- C++ -*-===//
//
// The model builder emits one function per kind of layer, called once per
// layer, and the training step derives a forward and a backward from each.
// They carry this unit attribute so the lowering to LLVM keeps them out of
// line: inlined at every call, each layer would be compiled again.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_DIALECT_REFORMER_IR_LAYERFUNCTIONS_H
#define REFORMER_DIALECT_REFORMER_IR_LAYERFUNCTIONS_H

#include "llvm/ADT/StringRef.h"

namespace mlir::reformer {

constexpr llvm::StringLiteral kLayerAttrName = "reformer.layer";

} // namespace mlir::reformer

#endif // REFORMER_DIALECT_REFORMER_IR_LAYERFUNCTIONS_H
