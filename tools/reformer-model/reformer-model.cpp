//===- reformer-model.cpp - Build a Reformer LM in the reformer dialect ---===//
//
// Reads a JSON model config (or takes a built-in preset) and writes the
// module the model builder makes of it, ready for reformer-opt.
//
//===----------------------------------------------------------------------===//

#include "reformer/Dialect/Reformer/IR/ReformerDialect.h"
#include "reformer/ModelBuilder/ModelBuilder.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::reformer;
namespace cl = llvm::cl;

static cl::opt<std::string>
    configPath(cl::Positional, cl::desc("<model config .json>"), cl::init(""));
static cl::opt<std::string>
    presetName("preset", cl::desc("Use a built-in config (see --list-presets)"),
               cl::init(""));
static cl::opt<bool> listPresets("list-presets",
                                 cl::desc("Print the built-in configs"));
static cl::opt<std::string> outputPath("o", cl::desc("Output file"),
                                       cl::value_desc("file"), cl::init("-"));
static cl::opt<bool>
    printSummary("summary", cl::desc("Print a summary of the model to stderr"));
static cl::opt<bool>
    emitLoss("emit-loss",
             cl::desc("Also emit @loss(tokens, targets, params...)"));
static cl::opt<bool> inlineLayers(
    "inline-layers",
    cl::desc("Put every layer's reversible block in @forward instead of "
             "calling one function per kind of layer"));

/// Layers, lengths and parameter counts, read off the built module.
static void summarize(const ModelConfig &config, ModuleOp module,
                      llvm::raw_ostream &os) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  int64_t tensors = 0, elements = 0;
  for (unsigned i = 1; i < forward.getNumArguments(); ++i) {
    ++tensors;
    elements +=
        cast<ShapedType>(forward.getArgument(i).getType()).getNumElements();
  }
  int64_t lsh = 0;
  for (int64_t layer = 0; layer < config.nLayers; ++layer)
    lsh += config.attentionOf(layer) == AttentionKind::Lsh;
  os << "model '" << config.name << "': " << config.nLayers << " layers ("
     << lsh << " LSH, " << config.nLayers - lsh << " local), d_model "
     << config.dModel << ", " << config.nHeads << " heads, d_ff " << config.dFf
     << "\n"
     << "sequence: " << config.seqLen << " tokens x batch " << config.batchSize
     << ", attention runs on " << config.paddedSeqLen() << " positions\n"
     << "parameters: " << tensors << " tensors, " << elements << " values ("
     << config.paramType() << ")"
     << (config.mixedPrecision() ? ", activations " + config.dtype : "")
     << "\n";
}

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "reformer-model") << message << "\n";
  return 1;
}

static llvm::Expected<ModelConfig> loadConfig() {
  if (!presetName.empty() && !configPath.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "give a config file or --preset, not both");
  if (!presetName.empty())
    return getModelPreset(presetName);
  if (configPath.empty())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "no model config: give a .json file or --preset=NAME");
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(configPath);
  if (std::error_code ec = buffer.getError())
    return llvm::createStringError(ec, "%s: cannot read: %s",
                                   configPath.c_str(), ec.message().c_str());
  return parseModelConfig((*buffer)->getBuffer(), configPath);
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv, "Reformer model builder: model config -> reformer dialect\n");

  if (listPresets) {
    for (const std::string &name : listModelPresets())
      llvm::outs() << name << "\n";
    return 0;
  }

  llvm::Expected<ModelConfig> config = loadConfig();
  if (!config)
    return fail(llvm::toString(config.takeError()));

  MLIRContext context;
  BuildOptions options;
  options.emitLoss = emitLoss;
  options.layerFunctions = !inlineLayers;
  FailureOr<OwningOpRef<ModuleOp>> module =
      buildModel(&context, *config, options);
  if (failed(module))
    return fail("the model built from '" + config->name +
                "' does not verify (see the diagnostics above)");

  if (printSummary)
    summarize(*config, **module, llvm::errs());

  // writeToOutput writes a temporary file and renames it, so an existing
  // output is never left half-written.
  if (llvm::Error e =
          llvm::writeToOutput(outputPath, [&](llvm::raw_ostream &os) {
            (*module)->print(os);
            return llvm::Error::success();
          }))
    return fail(outputPath + ": " + llvm::toString(std::move(e)));
  return 0;
}
