//===- TestModels.cpp - Model configs shared by the numerics tests --------===//

#include "TestModels.h"

using namespace mlir::reformer;

namespace harness {

ModelConfig smallModel() {
  ModelConfig c;
  c.name = "small";
  c.vocabSize = 32;
  c.dModel = 32;
  c.nHeads = 2;
  c.nLayers = 2;
  c.dFf = 48;
  c.seqLen = 40; // padded to 48 by the 16-position LSH chunks
  c.batchSize = 2;
  c.attnLayers = {AttentionKind::Local, AttentionKind::Lsh};
  c.nHashes = 2;
  c.nBuckets = {4};
  c.lshChunkLen = 16;
  c.localChunkLen = 8;
  c.ffnChunk = 16;
  c.activation = "gelu";
  c.axialPosShape = {8, 5};
  c.axialPosDims = {16, 16};
  c.hashSeed = 5;
  return c;
}

ModelConfig mixedPrecisionModel() {
  ModelConfig c = smallModel();
  c.dtype = "bf16";
  c.paramDtype = "f32";
  return c;
}

ModelConfig milestoneModel() {
  ModelConfig c;
  c.name = "milestone";
  c.vocabSize = 256;
  c.dModel = 256;
  c.nHeads = 4;
  c.nLayers = 2;
  c.dFf = 1024;
  c.seqLen = 16384;
  c.attnLayers = {AttentionKind::Lsh};
  c.nHashes = 4;
  c.nBuckets = {16, 32};
  c.lshChunkLen = 64;
  c.ffnChunk = 512;
  c.axialPosShape = {128, 128};
  c.axialPosDims = {128, 128};
  c.hashSeed = 7;
  return c;
}

reference::ModelConfig toReference(const ModelConfig &c) {
  reference::ModelConfig r;
  r.vocab = c.vocabSize;
  r.dModel = c.dModel;
  r.nHeads = c.nHeads;
  r.dHead = c.headDim();
  r.nLayers = c.nLayers;
  r.dFf = c.dFf;
  r.seqLen = c.seqLen;
  r.batch = c.batchSize;
  for (AttentionKind k : c.attnLayers)
    r.attention.push_back(k == AttentionKind::Lsh ? "lsh" : "local");
  r.lsh.nHashes = c.nHashes;
  r.lsh.nBuckets = c.nBuckets;
  r.lsh.chunkLen = c.lshChunkLen;
  r.lsh.chunksBefore = c.lshChunksBefore;
  r.lsh.chunksAfter = c.lshChunksAfter;
  r.lsh.duplicateCorrection = c.duplicateCorrection;
  r.localChunkLen = c.localChunkLen;
  r.localBefore = c.localChunksBefore;
  r.localAfter = c.localChunksAfter;
  r.causal = c.causal;
  r.ffnChunk = c.ffnChunk;
  r.activation = c.activation;
  r.axialShape = c.axialPosShape;
  r.axialDims = c.axialPosDims;
  r.eps = c.layerNormEps;
  r.hashSeed = c.hashSeed;
  r.dropout = c.dropout;
  return r;
}

} // namespace harness
