//===- InitReformer.cpp - Everything the compiler tools register ----------===//
//
// The only file that includes the InitAll* headers: they are slow to compile.
//
//===----------------------------------------------------------------------===//

#include "reformer/InitReformer.h"

#include "reformer/Conversion/Passes.h"
#include "reformer/Dialect/Reformer/IR/ReformerDialect.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"
#include "reformer/Pipelines/CpuPipeline.h"
#include "reformer/Pipelines/GpuPipeline.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

void mlir::reformer::registerReformerDialects(DialectRegistry &registry) {
  registry.insert<ReformerDialect>();
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
}

void mlir::reformer::registerReformerPassesAndPipelines() {
  static bool done = [] {
    registerAllPasses();
    registerReformerPasses();
    registerReformerConversionPasses();
    registerReformerPipelines();
    registerCpuPipeline();
    registerGpuPipeline();
    return true;
  }();
  (void)done;
}
