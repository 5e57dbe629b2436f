//===- RecordAbi.cpp - The rf-record-abi pass -----------------------------===//
//
// The manifest is plain text so the runtime reads it without MLIR or a JSON
// library:
//
//   reformer-abi 1
//   function forward reformer_entry_forward 3
//   input tokens i32 1x256
//   param embeddings.word_embeddings.weight f32 256x64
//   output logits f32 1x256x256
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"
#include "reformer/Dialect/Reformer/IR/LayerFunctions.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFRECORDABI
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// The element type names of the manifest; fails on anything else.
FailureOr<std::string> dtypeName(Type type) {
  if (type.isF32())
    return std::string("f32");
  if (type.isF64())
    return std::string("f64");
  if (type.isF16())
    return std::string("f16");
  if (type.isBF16())
    return std::string("bf16");
  if (type.isSignlessInteger(1))
    return std::string("i1");
  if (type.isSignlessInteger(32))
    return std::string("i32");
  if (type.isSignlessInteger(64))
    return std::string("i64");
  return failure();
}

std::string shapeText(RankedTensorType type) {
  if (type.getRank() == 0)
    return "scalar";
  return llvm::join(
      llvm::map_range(type.getShape(),
                      [](int64_t d) { return std::to_string(d); }),
      "x");
}

/// Marks the arguments `which` selects read-only for bufferization. All at
/// once: setting one argument's attributes rebuilds the list of every
/// argument's, which is quadratic for a deep model's training step.
void markReadOnly(func::FuncOp fn, llvm::function_ref<bool(unsigned)> which) {
  Builder b(fn.getContext());
  SmallVector<DictionaryAttr> attrs;
  for (unsigned i = 0; i < fn.getNumArguments(); ++i) {
    NamedAttrList list(fn.getArgAttrDict(i));
    if (which(i))
      list.set("bufferization.writable", b.getBoolAttr(false));
    attrs.push_back(list.getDictionary(fn.getContext()));
  }
  fn.setAllArgAttrs(attrs);
}

struct RfRecordAbiPass : reformer::impl::RfRecordAbiBase<RfRecordAbiPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::string text;
    llvm::raw_string_ostream os(text);
    os << "reformer-abi 1\n";
    Builder b(&getContext());
    for (auto fn : module.getOps<func::FuncOp>()) {
      // A layer's function that wrote its results over its inputs would
      // return them through copies into its callers' buffers, and its
      // callers would copy the inputs they still need first.
      if (fn->hasAttr(kLayerAttrName))
        markReadOnly(fn, [&](unsigned i) {
          return isa<TensorType>(fn.getArgument(i).getType());
        });
      if (fn.isPrivate() || fn.isExternal())
        continue;
      FunctionType type = fn.getFunctionType();
      os << "function " << fn.getSymName() << " reformer_entry_"
         << fn.getSymName() << " " << type.getNumInputs() + type.getNumResults()
         << "\n";
      auto line = [&](StringRef kind, StringRef name, Type t,
                      StringRef what) -> LogicalResult {
        auto tensor = dyn_cast<RankedTensorType>(t);
        FailureOr<std::string> dtype = tensor
                                           ? dtypeName(tensor.getElementType())
                                           : FailureOr<std::string>(failure());
        if (!tensor || !tensor.hasStaticShape() || failed(dtype))
          return fn.emitOpError()
                 << "cannot be exported: " << what << " has type " << t
                 << "; the C ABI takes statically shaped tensors of f32, "
                    "f64, f16, bf16, i1, i32 or i64";
        os << kind << " " << name << " " << *dtype << " " << shapeText(tensor)
           << "\n";
        return success();
      };
      for (unsigned i = 0; i < type.getNumInputs(); ++i) {
        StringRef kind = "input";
        std::string name = "arg" + std::to_string(i);
        if (auto attr = fn.getArgAttrOfType<StringAttr>(i, "reformer.param")) {
          kind = "param";
          name = attr.getValue().str();
        } else if (auto attr =
                       fn.getArgAttrOfType<StringAttr>(i, "reformer.input")) {
          name = attr.getValue().str();
        }
        if (failed(line(kind, name, type.getInput(i),
                        "argument " + std::to_string(i))))
          return signalPassFailure();
      }
      // The runtime owns the inputs and reuses them across calls.
      markReadOnly(fn, [](unsigned) { return true; });
      for (unsigned r = 0; r < type.getNumResults(); ++r) {
        std::string name = "result" + std::to_string(r);
        if (auto attr =
                fn.getResultAttrOfType<StringAttr>(r, "reformer.output"))
          name = attr.getValue().str();
        if (failed(line("output", name, type.getResult(r),
                        "result " + std::to_string(r))))
          return signalPassFailure();
      }
    }
    module->setAttr(kAbiAttrName, b.getStringAttr(text));
  }
};

} // namespace
