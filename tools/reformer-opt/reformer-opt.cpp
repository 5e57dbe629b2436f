//===- reformer-opt.cpp - The reformer optimizer driver -------------------===//
//
// mlir-opt with the reformer dialect, its passes and pipelines added to the
// upstream dialects and passes.
//
//===----------------------------------------------------------------------===//

#include "reformer/Dialect/Reformer/IR/ReformerDialect.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::reformer::registerReformerPasses();
  mlir::reformer::registerReformerPipelines();

  mlir::DialectRegistry registry;
  registry.insert<mlir::reformer::ReformerDialect>();
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Reformer optimizer driver\n", registry));
}
