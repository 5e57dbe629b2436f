//===- NameKernels.cpp - The rf-name-kernels pass -------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/IR/SymbolTable.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFNAMEKERNELS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

struct RfNameKernelsPass
    : reformer::impl::RfNameKernelsBase<RfNameKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Old reference → new reference, for the launches.
    DenseMap<Attribute, SymbolRefAttr> renamed;
    for (auto gpuModule : module.getOps<gpu::GPUModuleOp>()) {
      SmallVector<gpu::GPUFuncOp> kernels;
      for (auto func : gpuModule.getOps<gpu::GPUFuncOp>())
        if (func.isKernel())
          kernels.push_back(func);
      // Modules with several kernels keep their names.
      if (kernels.size() != 1 ||
          kernels.front().getName() == gpuModule.getName())
        continue;
      gpu::GPUFuncOp kernel = kernels.front();
      auto from =
          SymbolRefAttr::get(gpuModule.getNameAttr(),
                             {FlatSymbolRefAttr::get(kernel.getNameAttr())});
      kernel.setName(gpuModule.getName());
      renamed[from] =
          SymbolRefAttr::get(gpuModule.getNameAttr(),
                             {FlatSymbolRefAttr::get(gpuModule.getNameAttr())});
    }
    module.walk([&](gpu::LaunchFuncOp launch) {
      if (auto to = renamed.lookup(launch.getKernel()))
        launch.setKernelAttr(to);
    });
  }
};

} // namespace
