//===- reformer-opt.cpp - The reformer optimizer driver -------------------===//
//
// mlir-opt with the reformer dialect, its passes and pipelines added to the
// upstream dialects and passes.
//
//===----------------------------------------------------------------------===//

#include "reformer/InitReformer.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::reformer::registerReformerPassesAndPipelines();
  mlir::DialectRegistry registry;
  mlir::reformer::registerReformerDialects(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Reformer optimizer driver\n", registry));
}
