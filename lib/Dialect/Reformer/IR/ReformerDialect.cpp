//===- ReformerDialect.cpp - The reformer dialect -------------------------===//

#include "reformer/Dialect/Reformer/IR/ReformerDialect.h"
#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::reformer;

#include "reformer/Dialect/Reformer/IR/ReformerDialect.cpp.inc"
#include "reformer/Dialect/Reformer/IR/ReformerEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "reformer/Dialect/Reformer/IR/ReformerAttrs.cpp.inc"

void ReformerDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "reformer/Dialect/Reformer/IR/ReformerAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "reformer/Dialect/Reformer/IR/ReformerOps.cpp.inc"
      >();
}
