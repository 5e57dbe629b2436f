//===- Reference.cpp - Naive double-precision Reformer reference ----------===//

#include "Reference.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace reference {

namespace {

double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += a[i] * b[i];
  return s;
}

double logSumExp(const Vec &xs) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : xs)
    m = std::max(m, x);
  double s = 0;
  for (double x : xs)
    s += std::exp(x - m);
  return m + std::log(s);
}

/// Candidates [xR ; −xR] of one factor for position i, round r.
std::vector<double> hashCandidates(const Vec &x, const Vec &rot, int64_t i,
                                   int64_t dim, int64_t rounds, int64_t width,
                                   int64_t r, int64_t column, int64_t half) {
  std::vector<double> rotated(half);
  for (int64_t k = 0; k < half; ++k) {
    double s = 0;
    for (int64_t d = 0; d < dim; ++d)
      s += x[i * dim + d] * rot[(d * rounds + r) * width + column + k];
    rotated[k] = s;
  }
  std::vector<double> candidates(rotated);
  for (double value : rotated)
    candidates.push_back(-value);
  return candidates;
}

int64_t widthOf(const std::vector<int64_t> &factors) {
  int64_t w = 0;
  for (int64_t f : factors)
    w += f / 2;
  return w;
}

} // namespace

std::vector<int64_t> lshHash(const Vec &x, const Vec &rot, int64_t len,
                             int64_t dim, int64_t rounds,
                             const std::vector<int64_t> &factors) {
  int64_t width = widthOf(factors);
  std::vector<int64_t> buckets(rounds * len);
  for (int64_t r = 0; r < rounds; ++r)
    for (int64_t i = 0; i < len; ++i) {
      int64_t bucket = 0, multiplier = 1, column = 0;
      for (int64_t f : factors) {
        std::vector<double> c =
            hashCandidates(x, rot, i, dim, rounds, width, r, column, f / 2);
        // argmax; std::max_element returns the first (lowest) on ties.
        int64_t h = std::max_element(c.begin(), c.end()) - c.begin();
        bucket += h * multiplier;
        multiplier *= f;
        column += f / 2;
      }
      buckets[r * len + i] = bucket;
    }
  return buckets;
}

double lshHashMargin(const Vec &x, const Vec &rot, int64_t len, int64_t dim,
                     int64_t rounds, const std::vector<int64_t> &factors) {
  int64_t width = widthOf(factors);
  double margin = std::numeric_limits<double>::infinity();
  for (int64_t r = 0; r < rounds; ++r)
    for (int64_t i = 0; i < len; ++i) {
      int64_t column = 0;
      for (int64_t f : factors) {
        std::vector<double> c =
            hashCandidates(x, rot, i, dim, rounds, width, r, column, f / 2);
        std::sort(c.begin(), c.end(), std::greater<double>());
        margin = std::min(margin, c[0] - c[1]);
        column += f / 2;
      }
    }
  return margin;
}

void lshAttentionHead(const Vec &x, const Vec &v, const Vec &rot,
                      const std::vector<bool> &mask, int64_t len, int64_t dim,
                      const LshConfig &cfg, Vec &out, Vec *lseOut,
                      std::vector<int64_t> *bucketsOut) {
  int64_t rounds = cfg.nHashes, c = cfg.chunkLen;
  std::vector<int64_t> buckets =
      lshHash(x, rot, len, dim, rounds, cfg.nBuckets);
  if (bucketsOut)
    *bucketsOut = buckets;

  // Sorted sequence of length R·L: each round sorted by (bucket, position).
  std::vector<int64_t> sorted;
  for (int64_t r = 0; r < rounds; ++r) {
    std::vector<int64_t> order(len);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return buckets[r * len + a] < buckets[r * len + b];
    });
    sorted.insert(sorted.end(), order.begin(), order.end());
  }
  int64_t total = rounds * len, numChunks = total / c;

  // Keys: unit-length queries scaled by 1/sqrt(D).
  Vec keys(len * dim);
  for (int64_t j = 0; j < len; ++j) {
    double meanSq = dot(&x[j * dim], &x[j * dim], dim) / dim;
    double scale = 1.0 / std::sqrt(meanSq + 1e-6) / std::sqrt(double(dim));
    for (int64_t d = 0; d < dim; ++d)
      keys[j * dim + d] = x[j * dim + d] * scale;
  }

  auto windowOf = [&](int64_t slot) {
    std::vector<int64_t> slots;
    int64_t qc = slot / c;
    for (int64_t w = -cfg.chunksBefore; w <= cfg.chunksAfter; ++w) {
      int64_t kc = ((qc + w) % numChunks + numChunks) % numChunks;
      for (int64_t u = kc * c; u < (kc + 1) * c; ++u)
        slots.push_back(u);
    }
    return slots;
  };

  // N_ij: how often key j is scored for query i over all copies of i.
  std::vector<std::map<int64_t, int64_t>> meets(len);
  if (cfg.duplicateCorrection)
    for (int64_t t = 0; t < total; ++t)
      for (int64_t u : windowOf(t))
        ++meets[sorted[t]][sorted[u]];

  Vec roundOut(rounds * len * dim), roundLse(rounds * len);
  for (int64_t t = 0; t < total; ++t) {
    int64_t i = sorted[t], r = t / len;
    std::vector<int64_t> keySlots = windowOf(t);
    Vec scores;
    for (int64_t u : keySlots) {
      int64_t j = sorted[u];
      double s = dot(&x[i * dim], &keys[j * dim], dim);
      if (cfg.causal && j > i)
        s += -1e9;
      if (j == i)
        s += -1e5;
      if (!mask.empty() && !mask[j])
        s += -1e9;
      if (cfg.duplicateCorrection)
        s -= std::log(double(meets[i][j]));
      scores.push_back(s);
    }
    double z = logSumExp(scores);
    roundLse[r * len + i] = z;
    for (size_t n = 0; n < keySlots.size(); ++n) {
      double p = std::exp(scores[n] - z);
      int64_t j = sorted[keySlots[n]];
      for (int64_t d = 0; d < dim; ++d)
        roundOut[(r * len + i) * dim + d] += p * v[j * dim + d];
    }
  }

  out.assign(len * dim, 0.0);
  for (int64_t i = 0; i < len; ++i) {
    Vec zs;
    for (int64_t r = 0; r < rounds; ++r)
      zs.push_back(roundLse[r * len + i]);
    double total = logSumExp(zs);
    for (int64_t r = 0; r < rounds; ++r) {
      double w = std::exp(zs[r] - total);
      for (int64_t d = 0; d < dim; ++d)
        out[i * dim + d] += w * roundOut[(r * len + i) * dim + d];
    }
  }
  if (lseOut)
    *lseOut = roundLse;
}

void localAttentionHead(const Vec &q, const Vec &k, const Vec &v,
                        const std::vector<bool> &mask, int64_t len, int64_t dim,
                        int64_t c, int64_t before, int64_t after, bool causal,
                        Vec &out) {
  out.assign(len * dim, 0.0);
  int64_t numChunks = len / c;
  for (int64_t i = 0; i < len; ++i) {
    int64_t qc = i / c;
    std::vector<int64_t> keys;
    for (int64_t kc = std::max<int64_t>(0, qc - before);
         kc <= std::min(numChunks - 1, qc + after); ++kc)
      for (int64_t j = kc * c; j < (kc + 1) * c; ++j)
        keys.push_back(j);
    Vec scores;
    for (int64_t j : keys) {
      double s = dot(&q[i * dim], &k[j * dim], dim) / std::sqrt(double(dim));
      if (causal && j > i)
        s += -1e9;
      if (!mask.empty() && !mask[j])
        s += -1e9;
      scores.push_back(s);
    }
    double z = logSumExp(scores);
    for (size_t n = 0; n < keys.size(); ++n)
      for (int64_t d = 0; d < dim; ++d)
        out[i * dim + d] += std::exp(scores[n] - z) * v[keys[n] * dim + d];
  }
}

Vec rotationsFromSeed(int64_t seed, int64_t heads, int64_t dim, int64_t rounds,
                      int64_t width) {
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  const uint64_t gamma = 0x9E3779B97F4A7C15ull;
  uint64_t key = mix(static_cast<uint64_t>(seed));
  auto bits = [&](uint64_t counter) {
    return mix(key + (counter + 1) * gamma);
  };
  int64_t count = heads * dim * rounds * width;
  Vec out(count);
  for (int64_t n = 0; n < count; ++n) {
    double u1 = double((bits(2 * n) >> 11) + 1) * 0x1.0p-53;
    double u2 = double(bits(2 * n + 1) >> 11) * 0x1.0p-53;
    out[n] = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  return out;
}

Vec layerNorm(const Vec &x, const Vec &gamma, const Vec &beta, int64_t rows,
              int64_t n, double eps) {
  Vec y(rows * n);
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i)
      mean += x[r * n + i];
    mean /= n;
    for (int64_t i = 0; i < n; ++i)
      var += (x[r * n + i] - mean) * (x[r * n + i] - mean);
    var /= n;
    for (int64_t i = 0; i < n; ++i)
      y[r * n + i] =
          (x[r * n + i] - mean) / std::sqrt(var + eps) * gamma[i] + beta[i];
  }
  return y;
}

Vec dense(const Vec &x, const Vec &w, const Vec *bias, int64_t rows, int64_t k,
          int64_t n) {
  // y[r, :] = bias + Σ_i x[r, i] · w[i, :], rows of w streamed in order.
  Vec y(rows * n, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double *out = &y[r * n];
    if (bias)
      for (int64_t j = 0; j < n; ++j)
        out[j] = (*bias)[j];
    for (int64_t i = 0; i < k; ++i) {
      double xi = x[r * k + i];
      const double *wi = &w[i * n];
      for (int64_t j = 0; j < n; ++j)
        out[j] += xi * wi[j];
    }
  }
  return y;
}

double activation(const std::string &name, double x) {
  if (name == "relu")
    return std::max(x, 0.0);
  if (name == "gelu")
    return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  if (name == "gelu_tanh")
    return 0.5 * x *
           (1.0 +
            std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  assert(name == "silu");
  return x / (1.0 + std::exp(-x));
}

Vec feedForward(const Vec &x, const Vec &w1, const Vec &b1, const Vec &w2,
                const Vec &b2, int64_t rows, int64_t m, int64_t f,
                const std::string &act) {
  Vec h = dense(x, w1, &b1, rows, m, f);
  for (double &e : h)
    e = activation(act, e);
  return dense(h, w2, &b2, rows, f, m);
}

double crossEntropy(const Vec &logits, const std::vector<int64_t> &targets,
                    int64_t vocab) {
  double total = 0;
  for (size_t n = 0; n < targets.size(); ++n) {
    Vec row(logits.begin() + n * vocab, logits.begin() + (n + 1) * vocab);
    total += logSumExp(row) - row[targets[n]];
  }
  return total / double(targets.size());
}

namespace {

/// Moves between [B, L, H·D] and per-head [L, D] slices.
Vec headSlice(const Vec &x, int64_t b, int64_t h, int64_t len, int64_t heads,
              int64_t dim) {
  Vec s(len * dim);
  for (int64_t i = 0; i < len; ++i)
    for (int64_t d = 0; d < dim; ++d)
      s[i * dim + d] = x[(b * len + i) * heads * dim + h * dim + d];
  return s;
}

void putHead(Vec &x, const Vec &s, int64_t b, int64_t h, int64_t len,
             int64_t heads, int64_t dim) {
  for (int64_t i = 0; i < len; ++i)
    for (int64_t d = 0; d < dim; ++d)
      x[(b * len + i) * heads * dim + h * dim + d] = s[i * dim + d];
}

int64_t lcm(int64_t a, int64_t b) { return a / std::gcd(a, b) * b; }

} // namespace

Vec dropout(const Vec &x, double rate, int64_t seed, int64_t salt) {
  auto mix = [](uint64_t z) {
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  uint64_t key = uint64_t(seed) * 0x9E3779B97F4A7C15ULL ^
                 uint64_t(salt) * 0xD1B54A32D192ED03ULL;
  Vec y(x.size());
  for (size_t n = 0; n < x.size(); ++n) {
    double u = double(mix(key ^ n) >> 40) / double(1 << 24);
    y[n] = u >= rate ? x[n] / (1 - rate) : 0.0;
  }
  return y;
}

Vec axialPositions(const std::vector<Vec> &weights,
                   const std::vector<int64_t> &shape,
                   const std::vector<int64_t> &dims, int64_t len) {
  int64_t m = 0;
  for (int64_t d : dims)
    m += d;
  Vec table(len * m, 0.0);
  for (int64_t i = 0; i < len; ++i) {
    int64_t column = 0;
    for (size_t t = 0; t < shape.size(); ++t) {
      // Mixed radix, most significant axis first.
      int64_t stride = 1;
      for (size_t s = t + 1; s < shape.size(); ++s)
        stride *= shape[s];
      int64_t pt = (i / stride) % shape[t];
      for (int64_t e = 0; e < dims[t]; ++e)
        table[i * m + column + e] = weights[t][pt * dims[t] + e];
      column += dims[t];
    }
  }
  return table;
}

Vec modelForward(const ModelConfig &cfg,
                 const std::map<std::string, Vec> &params,
                 const std::vector<int64_t> &tokens) {
  auto p = [&](const std::string &name) -> const Vec & {
    auto it = params.find(name);
    assert(it != params.end() && "missing parameter");
    return it->second;
  };
  int64_t m = cfg.dModel, heads = cfg.nHeads, dh = cfg.dHead,
          width = heads * dh, L = cfg.seqLen, B = cfg.batch;

  // Padding to every chunk length in use.
  int64_t multiple = 1;
  for (const std::string &a : cfg.attention)
    multiple = lcm(multiple, a == "lsh" ? cfg.lsh.chunkLen : cfg.localChunkLen);
  int64_t Lp = (L + multiple - 1) / multiple * multiple;
  std::vector<bool> mask(Lp);
  for (int64_t i = 0; i < Lp; ++i)
    mask[i] = i < L;
  std::vector<bool> noMask;
  const std::vector<bool> &keyMask = Lp > L ? mask : noMask;

  // Embedding + axial positions, zero padding.
  Vec x(B * Lp * m, 0.0);
  const Vec &table = p("embeddings.word_embeddings.weight");
  std::vector<Vec> axialWeights;
  for (size_t t = 0; t < cfg.axialShape.size(); ++t)
    axialWeights.push_back(
        p("embeddings.position_embeddings.weights." + std::to_string(t)));
  Vec positions =
      axialPositions(axialWeights, cfg.axialShape, cfg.axialDims, L);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t e = 0; e < m; ++e)
        x[(b * Lp + i) * m + e] =
            table[tokens[b * L + i] * m + e] +
            (positions.empty() ? 0.0 : positions[i * m + e]);

  Vec x1 = x, x2 = x;
  for (int64_t layer = 0; layer < cfg.nLayers; ++layer) {
    std::string pre = "layers." + std::to_string(layer) + ".";
    const std::string &kind = cfg.attention[layer % cfg.attention.size()];
    // F: layer norm → attention → output projection.
    Vec n = layerNorm(x2, p(pre + "attention.layer_norm.weight"),
                      p(pre + "attention.layer_norm.bias"), B * Lp, m, cfg.eps);
    Vec v = dense(n, p(pre + "attention.self.value.weight"), nullptr, B * Lp, m,
                  width);
    Vec attn(B * Lp * width);
    if (kind == "lsh") {
      Vec qk = dense(n, p(pre + "attention.self.query_key.weight"), nullptr,
                     B * Lp, m, width);
      int64_t rotWidth = widthOf(cfg.lsh.nBuckets);
      auto it = params.find(pre + "attention.self.rotations");
      Vec rot = it != params.end()
                    ? it->second
                    : rotationsFromSeed(cfg.hashSeed + layer, heads, dh,
                                        cfg.lsh.nHashes, rotWidth);
      LshConfig lc = cfg.lsh;
      lc.causal = cfg.causal;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < heads; ++h) {
          Vec headRot(rot.begin() + h * dh * cfg.lsh.nHashes * rotWidth,
                      rot.begin() + (h + 1) * dh * cfg.lsh.nHashes * rotWidth);
          Vec o;
          lshAttentionHead(headSlice(qk, b, h, Lp, heads, dh),
                           headSlice(v, b, h, Lp, heads, dh), headRot, keyMask,
                           Lp, dh, lc, o);
          putHead(attn, o, b, h, Lp, heads, dh);
        }
    } else {
      Vec q = dense(n, p(pre + "attention.self.query.weight"), nullptr, B * Lp,
                    m, width);
      Vec k = dense(n, p(pre + "attention.self.key.weight"), nullptr, B * Lp, m,
                    width);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < heads; ++h) {
          Vec o;
          localAttentionHead(headSlice(q, b, h, Lp, heads, dh),
                             headSlice(k, b, h, Lp, heads, dh),
                             headSlice(v, b, h, Lp, heads, dh), keyMask, Lp, dh,
                             cfg.localChunkLen, cfg.localBefore, cfg.localAfter,
                             cfg.causal, o);
          putHead(attn, o, b, h, Lp, heads, dh);
        }
    }
    Vec f = dense(attn, p(pre + "attention.output.dense.weight"), nullptr,
                  B * Lp, width, m);
    if (cfg.dropout > 0)
      f = dropout(f, cfg.dropout, cfg.dropoutSeed, 2 * layer);
    for (size_t e = 0; e < x1.size(); ++e)
      x1[e] += f[e]; // y1 = x1 + F(x2)
    // G: layer norm → feed-forward, on y1.
    Vec g =
        layerNorm(x1, p(pre + "feed_forward.layer_norm.weight"),
                  p(pre + "feed_forward.layer_norm.bias"), B * Lp, m, cfg.eps);
    g = feedForward(g, p(pre + "feed_forward.dense.weight"),
                    p(pre + "feed_forward.dense.bias"),
                    p(pre + "feed_forward.output.dense.weight"),
                    p(pre + "feed_forward.output.dense.bias"), B * Lp, m,
                    cfg.dFf, cfg.activation);
    if (cfg.dropout > 0)
      g = dropout(g, cfg.dropout, cfg.dropoutSeed, 2 * layer + 1);
    for (size_t e = 0; e < x2.size(); ++e)
      x2[e] += g[e]; // y2 = x2 + G(y1)
  }

  // Concatenate the streams, normalize, project (valid positions only).
  Vec h(B * L * 2 * m);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t e = 0; e < m; ++e) {
        h[(b * L + i) * 2 * m + e] = x1[(b * Lp + i) * m + e];
        h[(b * L + i) * 2 * m + m + e] = x2[(b * Lp + i) * m + e];
      }
  h = layerNorm(h, p("layer_norm.weight"), p("layer_norm.bias"), B * L, 2 * m,
                cfg.eps);
  return dense(h, p("lm_head.weight"), &p("lm_head.bias"), B * L, 2 * m,
               cfg.vocab);
}

} // namespace reference
