//===- ReformerDialect.h - The reformer dialect -----------------*- C++ -*-===//

#ifndef REFORMER_DIALECT_REFORMER_IR_REFORMERDIALECT_H
#define REFORMER_DIALECT_REFORMER_IR_REFORMERDIALECT_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "reformer/Dialect/Reformer/IR/ReformerDialect.h.inc"

#endif // REFORMER_DIALECT_REFORMER_IR_REFORMERDIALECT_H
