//===- ModelPresets.cpp - Built-in model configs --------------------------===//

#include "reformer/ModelBuilder/ModelConfig.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir::reformer;

namespace {
struct Preset {
  const char *name;
  ModelConfig (*make)();
};
} // namespace

/// A model small enough to compile and run anywhere in seconds.
static ModelConfig tiny() {
  ModelConfig c;
  c.name = "tiny";
  c.vocabSize = 256;
  c.dModel = 64;
  c.nHeads = 2;
  c.nLayers = 2;
  c.dFf = 128;
  c.seqLen = 256;
  c.attnLayers = {AttentionKind::Local, AttentionKind::Lsh};
  c.nHashes = 2;
  c.nBuckets = {8};
  c.lshChunkLen = 32;
  c.localChunkLen = 32;
  c.ffnChunk = 64;
  c.axialPosShape = {16, 16};
  c.axialPosDims = {32, 32};
  return c;
}

/// The paper's synthetic duplication task (section 5): 1 layer,
/// d_model = d_ff = 256, 4 heads, length 1024, 4 hash rounds.
static ModelConfig synthetic() {
  ModelConfig c;
  c.name = "synthetic";
  c.vocabSize = 128;
  c.dModel = 256;
  c.nHeads = 4;
  c.nLayers = 1;
  c.dFf = 256;
  c.seqLen = 1024;
  c.nHashes = 4;
  c.nBuckets = {32};
  c.lshChunkLen = 64;
  c.ffnChunk = 256;
  c.axialPosShape = {32, 32};
  c.axialPosDims = {128, 128};
  return c;
}

/// The duplication task at a size that trains in seconds: `0 w 0 w` with
/// L = 64 and 15 symbols; two LSH layers with 4 hash rounds; batches of 16.
/// reformer-train's default model (100 % accuracy after ~500 steps).
static ModelConfig duplication() {
  ModelConfig c;
  c.name = "duplication";
  c.vocabSize = 16;
  c.dModel = 128;
  c.nHeads = 4;
  c.nLayers = 2;
  c.dFf = 256;
  c.seqLen = 64;
  c.batchSize = 16;
  c.nHashes = 4;
  c.nBuckets = {4};
  c.lshChunkLen = 16;
  c.ffnChunk = 64;
  c.axialPosShape = {8, 8};
  c.axialPosDims = {64, 64};
  return c;
}

/// enwik8-style byte-level model: 12 layers on 64K-token sequences.
static ModelConfig enwik8() {
  ModelConfig c;
  c.name = "enwik8";
  c.vocabSize = 256;
  c.dModel = 1024;
  c.nHeads = 8;
  c.nLayers = 12;
  c.dFf = 4096;
  c.seqLen = 65536;
  c.attnLayers = {AttentionKind::Local, AttentionKind::Lsh};
  c.nHashes = 2;
  c.nBuckets = {16, 32};
  c.lshChunkLen = 128;
  c.localChunkLen = 128;
  c.ffnChunk = 1024;
  c.axialPosShape = {128, 512};
  c.axialPosDims = {256, 768};
  return c;
}

static const Preset kPresets[] = {{"tiny", tiny},
                                  {"synthetic", synthetic},
                                  {"duplication", duplication},
                                  {"enwik8", enwik8}};

std::vector<std::string> mlir::reformer::listModelPresets() {
  std::vector<std::string> names;
  for (const Preset &p : kPresets)
    names.push_back(p.name);
  return names;
}

llvm::Expected<ModelConfig>
mlir::reformer::getModelPreset(llvm::StringRef name) {
  for (const Preset &p : kPresets)
    if (name == p.name)
      return p.make();
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      "unknown preset '" + name.str() +
          "' (known: " + llvm::join(listModelPresets(), ", ") + ")");
}
