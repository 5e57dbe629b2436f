//===- ReformerOps.h - Ops of the reformer dialect --------------*- C++ -*-===//

#ifndef REFORMER_DIALECT_REFORMER_IR_REFORMEROPS_H
#define REFORMER_DIALECT_REFORMER_IR_REFORMEROPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "reformer/Dialect/Reformer/IR/ReformerDialect.h"

#include "reformer/Dialect/Reformer/IR/ReformerEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "reformer/Dialect/Reformer/IR/ReformerAttrs.h.inc"

#define GET_OP_CLASSES
#include "reformer/Dialect/Reformer/IR/ReformerOps.h.inc"

#endif // REFORMER_DIALECT_REFORMER_IR_REFORMEROPS_H
