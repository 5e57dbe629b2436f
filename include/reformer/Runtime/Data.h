//===- Data.h - Training data as token batches ------------------*- C++ -*-===//
//
// Sources of (tokens, targets, loss weights) batches for next-token
// training: windows of a byte file (enwik8 and anything in its format),
// the paper's synthetic duplication task, and images as pixel sequences.
// Random draws come from a SplitMix64 stream whose state is one integer, so
// a checkpoint can store it and a resumed run draws the same batches.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_RUNTIME_DATA_H
#define REFORMER_RUNTIME_DATA_H

#include "reformer/Runtime/Tensor.h"

#include <memory>

namespace reformer::runtime {

/// SplitMix64: a 64-bit state, advanced by a constant per draw.
struct Rng {
  uint64_t state = 0;
  uint64_t next();
  /// Uniform in [0, n).
  uint64_t below(uint64_t n) { return next() % n; }
};

/// One batch: tokens and targets [B, L] i32, weights [B, L] f32 (0 where a
/// position does not count towards the loss).
struct Batch {
  Tensor tokens, targets, weights;
  Batch(int64_t batch, int64_t len);
};

class TokenSource {
public:
  virtual ~TokenSource() = default;
  /// Fills `out` with a random batch drawn from `rng`.
  virtual void sample(Rng &rng, Batch &out) const = 0;
  /// Fills `out` with the `index`-th fixed evaluation batch (no randomness:
  /// every evaluation sees the same data).
  virtual void evalBatch(int64_t index, Batch &out) const = 0;
  /// Whether a byte-level corpus (bits per byte are meaningful).
  virtual bool bytes() const { return false; }
};

/// Windows of L + 1 bytes of `data[begin, end)`: tokens are the first L,
/// targets the next L.
class ByteCorpus : public TokenSource {
public:
  /// Reads `path`; `begin`/`end` are byte offsets (end = -1: the file end).
  static Status open(const std::string &path, int64_t begin, int64_t end,
                     int64_t len, std::unique_ptr<ByteCorpus> &out);
  void sample(Rng &rng, Batch &out) const override;
  void evalBatch(int64_t index, Batch &out) const override;
  bool bytes() const override { return true; }
  int64_t size() const { return int64_t(data_.size()); }

private:
  void window(int64_t offset, Batch &out, int64_t row) const;
  std::vector<uint8_t> data_;
  int64_t len_ = 0;
};

/// The paper's duplication task: `0 w 0 w`, w of L/2 − 1 symbols drawn
/// uniformly from 1 … vocab − 1; the loss counts only the predictions of
/// the second copy of w.
class DuplicationTask : public TokenSource {
public:
  DuplicationTask(int64_t len, int64_t vocab) : len_(len), vocab_(vocab) {}
  void sample(Rng &rng, Batch &out) const override;
  void evalBatch(int64_t index, Batch &out) const override;

private:
  void sequence(Rng &rng, Batch &out, int64_t row) const;
  int64_t len_, vocab_;
};

/// Images as pixel sequences (pixel values 0–255 are the tokens, row by
/// row; one image per sequence, padded with weight-0 zeros up to L), from
/// IDX image files such as Fashion-MNIST's `train-images-idx3-ubyte`, plain
/// or gzip-compressed (Debian's dataset-fashion-mnist ships `.gz`), or from
/// imagenet64's `.npz` batches (`data`: uint8 [N, 3·64·64], R, G and B
/// planes), read as pixels in raster order with each pixel's R, G, B
/// together (L = 12288 for 64 × 64).
class ImagePixels : public TokenSource {
public:
  static Status open(const std::string &path, int64_t len,
                     std::unique_ptr<ImagePixels> &out);
  void sample(Rng &rng, Batch &out) const override;
  void evalBatch(int64_t index, Batch &out) const override;
  int64_t count() const { return count_; }

private:
  void image(int64_t index, Batch &out, int64_t row) const;
  std::vector<uint8_t> pixels_;
  int64_t count_ = 0, pixelsPerImage_ = 0, len_ = 0;
};

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_DATA_H
