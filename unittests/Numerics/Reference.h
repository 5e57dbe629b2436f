//===- Reference.h - Naive double-precision Reformer reference --*- C++ -*-===//
//
// Written straight from the paper's equations and REFORMER-SEMANTICS: dense,
// naive, double precision, sharing no code with the compiler. Tensors are
// flat row-major vectors.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_UNITTESTS_NUMERICS_REFERENCE_H
#define REFORMER_UNITTESTS_NUMERICS_REFERENCE_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace reference {

using Vec = std::vector<double>;

struct LshConfig {
  int64_t nHashes = 2;
  std::vector<int64_t> nBuckets = {8};
  int64_t chunkLen = 16;
  int64_t chunksBefore = 1, chunksAfter = 0;
  bool causal = false;
  bool duplicateCorrection = false;
};

/// Buckets of one head: `x` is [L, D], `rot` [D, R, K]; result [R, L].
std::vector<int64_t> lshHash(const Vec &x, const Vec &rot, int64_t len,
                             int64_t dim, int64_t rounds,
                             const std::vector<int64_t> &factors);

/// The smallest gap between the two best hash candidates over all
/// positions, rounds and factors: inputs with a near tie are ambiguous at
/// any finite precision.
double lshHashMargin(const Vec &x, const Vec &rot, int64_t len, int64_t dim,
                     int64_t rounds, const std::vector<int64_t> &factors);

/// LSH attention of one head. `mask` is [L] (empty: none). Fills `out`
/// [L, D] and, if non-null, `lse` [R, L] and `buckets` [R, L].
void lshAttentionHead(const Vec &x, const Vec &v, const Vec &rot,
                      const std::vector<bool> &mask, int64_t len, int64_t dim,
                      const LshConfig &config, Vec &out, Vec *lse = nullptr,
                      std::vector<int64_t> *buckets = nullptr);

/// Local (chunked full) attention of one head: q, k, v [L, D].
void localAttentionHead(const Vec &q, const Vec &k, const Vec &v,
                        const std::vector<bool> &mask, int64_t len, int64_t dim,
                        int64_t chunkLen, int64_t before, int64_t after,
                        bool causal, Vec &out);

/// Rotations [H, D, R, K] drawn from `seed` (docs/lsh-rotations.md).
Vec rotationsFromSeed(int64_t seed, int64_t heads, int64_t dim, int64_t rounds,
                      int64_t width);

/// Row-wise layer norm of [rows, n].
Vec layerNorm(const Vec &x, const Vec &gamma, const Vec &beta, int64_t rows,
              int64_t n, double eps);

/// [rows, k] × [k, n] (+ bias).
Vec dense(const Vec &x, const Vec &w, const Vec *bias, int64_t rows, int64_t k,
          int64_t n);

double activation(const std::string &name, double x);

/// act(x W1 + b1) W2 + b2 on [rows, m].
Vec feedForward(const Vec &x, const Vec &w1, const Vec &b1, const Vec &w2,
                const Vec &b2, int64_t rows, int64_t m, int64_t f,
                const std::string &act);

/// Mean softmax cross-entropy of logits [N, V] against targets [N].
double crossEntropy(const Vec &logits, const std::vector<int64_t> &targets,
                    int64_t vocab);

/// Axial position embeddings `[len, Σ dims]`: position p, written in mixed
/// radix over `shape` (first axis most significant), gets concat_t
/// weights[t][p_t] (`weights[t]` is `[shape[t], dims[t]]`).
Vec axialPositions(const std::vector<Vec> &weights,
                   const std::vector<int64_t> &shape,
                   const std::vector<int64_t> &dims, int64_t len);

/// Dropout as the semantics of reformer.dropout define it: element n (row-
/// major) is kept when the top 24 bits of splitmix64(seed·φ ⊕ salt·c ⊕ n),
/// over 2²⁴, are ≥ rate, and scaled by 1 / (1 − rate).
Vec dropout(const Vec &x, double rate, int64_t seed, int64_t salt);

/// Hyper-parameters of a whole model, the subset the reference needs.
struct ModelConfig {
  int64_t vocab, dModel, nHeads, dHead, nLayers, dFf, seqLen, batch;
  std::vector<std::string> attention; ///< "lsh" or "local", per layer.
  LshConfig lsh;
  int64_t localChunkLen, localBefore, localAfter;
  bool causal;
  int64_t ffnChunk;
  std::string activation;
  std::vector<int64_t> axialShape, axialDims;
  double eps;
  int64_t hashSeed;
  /// Dropout on every residual function's output (sites 2·layer for F,
  /// 2·layer + 1 for G), with the step's seed.
  double dropout = 0;
  int64_t dropoutSeed = 0;
};

/// Logits [B, L, vocab] of the Reformer LM (trax / Hugging Face layout:
/// two residual streams, reversible blocks, concatenation, final norm, LM
/// head). Parameters by their ABI names; missing rotations are drawn from
/// `hashSeed + layer`.
Vec modelForward(const ModelConfig &config,
                 const std::map<std::string, Vec> &params,
                 const std::vector<int64_t> &tokens);

} // namespace reference

#endif // REFORMER_UNITTESTS_NUMERICS_REFERENCE_H
