//===- NameKernels.cpp - The rf-name-kernels pass -------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFNAMEKERNELS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

/// Whether `name` can be part of a symbol, a PTX identifier and a file
/// name: letters, digits and underscores.
bool isIdentifier(StringRef name) {
  return !name.empty() && llvm::all_of(name, [](char c) {
    return llvm::isAlnum(c) || c == '_';
  });
}

/// The first name a location carries (NameLoc, looking through fused and
/// call-site locations) that is an identifier, or "". Names of other
/// front ends ("jit(f)/dot") are skipped.
StringRef roleOf(Location loc) {
  if (auto named = dyn_cast<NameLoc>(loc)) {
    if (isIdentifier(named.getName().getValue()))
      return named.getName().getValue();
    return roleOf(named.getChildLoc());
  }
  if (auto fused = dyn_cast<FusedLoc>(loc)) {
    for (Location inner : fused.getLocations())
      if (StringRef role = roleOf(inner); !role.empty())
        return role;
    return "";
  }
  if (auto site = dyn_cast<CallSiteLoc>(loc))
    return roleOf(site.getCallee());
  return "";
}

/// `forward_kernel_12` with role `lsh_attention` → `forward_lsh_attention_12`.
std::string renamed(StringRef moduleName, StringRef role) {
  size_t at = moduleName.rfind("_kernel");
  if (role.empty() || at == StringRef::npos)
    return moduleName.str();
  return (moduleName.take_front(at) + "_" + role +
          moduleName.drop_front(at + StringRef("_kernel").size()))
      .str();
}

struct RfNameKernelsPass
    : reformer::impl::RfNameKernelsBase<RfNameKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Renamed here, not with SymbolTable::rename: that walks the whole
    // module for uses, once per kernel.
    llvm::StringSet<> taken;
    for (Operation &op : *module.getBody())
      if (auto name = SymbolTable::getSymbolName(&op))
        taken.insert(name.getValue());
    // Old reference → new reference, for the launches.
    DenseMap<Attribute, SymbolRefAttr> renames;
    for (auto gpuModule : module.getOps<gpu::GPUModuleOp>()) {
      SmallVector<gpu::GPUFuncOp> kernels;
      for (auto func : gpuModule.getOps<gpu::GPUFuncOp>())
        if (func.isKernel())
          kernels.push_back(func);
      // Modules with several kernels keep their names.
      if (kernels.size() != 1)
        continue;
      gpu::GPUFuncOp kernel = kernels.front();
      auto from =
          SymbolRefAttr::get(gpuModule.getNameAttr(),
                             {FlatSymbolRefAttr::get(kernel.getNameAttr())});
      std::string name = renamed(gpuModule.getName(), roleOf(kernel.getLoc()));
      if (name != gpuModule.getName() && taken.insert(name).second)
        gpuModule.setName(name);
      if (from.getRootReference() == gpuModule.getNameAttr() &&
          kernel.getName() == gpuModule.getName())
        continue;
      kernel.setName(gpuModule.getName());
      renames[from] =
          SymbolRefAttr::get(gpuModule.getNameAttr(),
                             {FlatSymbolRefAttr::get(gpuModule.getNameAttr())});
    }
    module.walk([&](gpu::LaunchFuncOp launch) {
      if (auto to = renames.lookup(launch.getKernel()))
        launch.setKernelAttr(to);
    });
  }
};

} // namespace
