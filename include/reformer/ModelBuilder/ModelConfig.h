//===- ModelConfig.h - Hyper-parameters of a Reformer LM --------*- C++ -*-===//
//
// The configuration a Reformer language model is built from, read from JSON
// (docs/model-config.md lists the fields) or taken from a built-in preset.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_MODELBUILDER_MODELCONFIG_H
#define REFORMER_MODELBUILDER_MODELCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::reformer {

enum class AttentionKind { Lsh, Local };

struct ModelConfig {
  std::string name = "reformer";
  int64_t vocabSize = 256;
  int64_t dModel = 256;
  int64_t nHeads = 4;
  int64_t dHead = 0; ///< 0: d_model / n_heads.
  int64_t nLayers = 2;
  int64_t dFf = 512;
  int64_t seqLen = 1024;
  int64_t batchSize = 1;
  /// Attention of each layer; the list repeats when shorter than n_layers.
  std::vector<AttentionKind> attnLayers = {AttentionKind::Lsh};
  int64_t nHashes = 2;
  std::vector<int64_t> nBuckets = {32}; ///< One factor, or several.
  int64_t lshChunkLen = 64;
  int64_t lshChunksBefore = 1;
  int64_t lshChunksAfter = 0;
  int64_t localChunkLen = 64;
  int64_t localChunksBefore = 1;
  int64_t localChunksAfter = 0;
  bool causal = true;
  bool duplicateCorrection = false;
  /// Rotations drawn from `hashSeed + layer` (false) or passed as arguments.
  bool rotationsAsArguments = false;
  int64_t hashSeed = 0;
  int64_t ffnChunk = 128;
  std::string activation = "gelu";
  std::vector<int64_t> axialPosShape; ///< Empty: no position embedding.
  std::vector<int64_t> axialPosDims;
  double layerNormEps = 1e-6;
  /// Dropout on the output of every residual function (F and G) during
  /// training; inference ignores it.
  double dropout = 0.0;
  /// Element type of the activations inside the residual functions and of
  /// the logits' matmul operands.
  std::string dtype = "f32";
  /// Element type of the parameters, the embeddings and the residual stream;
  /// empty means `dtype`. `"f32"` with `dtype` `"bf16"` is mixed precision:
  /// f32 master weights and residual stream, bf16 activations.
  std::string paramDtype;

  const std::string &paramType() const {
    return paramDtype.empty() ? dtype : paramDtype;
  }
  bool mixedPrecision() const { return paramType() != dtype; }

  int64_t headDim() const { return dHead ? dHead : dModel / nHeads; }
  AttentionKind attentionOf(int64_t layer) const {
    return attnLayers[layer % attnLayers.size()];
  }
  bool usesAttention(AttentionKind kind) const;
  /// The sequence length the attention layers run on: seq_len rounded up to
  /// a multiple of every chunk length in use. Positions past seq_len are
  /// padding, masked out of every attention.
  int64_t paddedSeqLen() const;
};

/// Parses a JSON model config. Errors name `sourceName`, the field, what was
/// expected and what was found.
llvm::Expected<ModelConfig> parseModelConfig(llvm::StringRef json,
                                             llvm::StringRef sourceName);

/// Checks the fields against each other (shapes, chunking, buckets).
llvm::Error validateModelConfig(const ModelConfig &config,
                                llvm::StringRef sourceName);

/// The names of the built-in configs.
std::vector<std::string> listModelPresets();

/// A built-in config by name, or an error listing the known names.
llvm::Expected<ModelConfig> getModelPreset(llvm::StringRef name);

} // namespace mlir::reformer

#endif // REFORMER_MODELBUILDER_MODELCONFIG_H
