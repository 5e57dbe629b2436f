//===- EmitEntryPoints.cpp - The rf-emit-entry-points pass ----------------===//

#include "reformer/Conversion/Passes.h"
#include "reformer/Dialect/Reformer/IR/LayerFunctions.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFEMITENTRYPOINTS
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

namespace {

struct RfEmitEntryPointsPass
    : reformer::impl::RfEmitEntryPointsBase<RfEmitEntryPointsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto abi = module->getAttrOfType<StringAttr>(kAbiAttrName);
    if (!abi) {
      module.emitError() << "no '" << kAbiAttrName
                         << "' attribute: run rf-record-abi before lowering";
      return signalPassFailure();
    }
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToEnd(module.getBody());
    Location loc = module.getLoc();
    auto ptr = LLVM::LLVMPointerType::get(&getContext());

    SmallVector<StringRef> lines;
    abi.getValue().split(lines, '\n', -1, false);
    for (StringRef line : lines) {
      SmallVector<StringRef> words;
      line.split(words, ' ');
      if (words.size() != 4 || words[0] != "function")
        continue;
      StringRef name = words[1], entry = words[2];
      unsigned numArgs = 0;
      if (words[3].getAsInteger(10, numArgs))
        continue;
      auto callee = module.lookupSymbol<LLVM::LLVMFuncOp>(name);
      if (!callee || callee.getNumArguments() != numArgs ||
          !llvm::all_of(callee.getArgumentTypes(),
                        [&](Type t) { return t == ptr; })) {
        module.emitError() << "cannot emit the entry point of '" << name
                           << "': expected an llvm.func taking " << numArgs
                           << " pointers (lower with bare-pointer memrefs "
                              "and results as out-parameters)";
        return signalPassFailure();
      }
      auto fnType = LLVM::LLVMFunctionType::get(
          LLVM::LLVMVoidType::get(&getContext()), {ptr});
      auto wrapper = LLVM::LLVMFuncOp::create(b, loc, entry, fnType);
      Block *body = wrapper.addEntryBlock(b);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(body);
      SmallVector<Value> args;
      for (unsigned i = 0; i < numArgs; ++i) {
        Value slot = LLVM::GEPOp::create(
            b, loc, ptr, ptr, body->getArgument(0),
            ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
        args.push_back(LLVM::LoadOp::create(b, loc, ptr, slot));
      }
      LLVM::CallOp::create(b, loc, callee, args);
      LLVM::ReturnOp::create(b, loc, ValueRange{});
    }

    // The manifest, NUL-terminated, for dlsym("reformer_abi").
    std::string text = abi.getValue().str();
    text.push_back('\0');
    auto arrayType = LLVM::LLVMArrayType::get(
        IntegerType::get(&getContext(), 8), text.size());
    LLVM::GlobalOp::create(b, loc, arrayType, /*isConstant=*/true,
                           LLVM::Linkage::External, "reformer_abi",
                           b.getStringAttr(text));
    module->removeAttr(kAbiAttrName);

    // Private functions (outlined attention blocks, emulation helpers) are
    // the module's own: internal linkage keeps them out of the shared
    // library's exported symbols.
    module.walk([](LLVM::LLVMFuncOp function) {
      if (!function.isExternal() && function.isPrivate() &&
          function.getLinkage() == LLVM::Linkage::External)
        function.setLinkage(LLVM::Linkage::Internal);
      // A layer's function is called once per layer: inlined, it would be
      // optimized and compiled once per call, and compile time would grow
      // with depth again.
      if (function->removeAttr(reformer::kLayerAttrName))
        function.setNoInline(true);
    });
  }
};

} // namespace
