//===- Data.cpp - Training data as token batches --------------------------===//

#include "reformer/Runtime/Data.h"

#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace reformer::runtime {

uint64_t Rng::next() {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

Batch::Batch(int64_t batch, int64_t len)
    : tokens({"tokens", DType::I32, {batch, len}}),
      targets({"targets", DType::I32, {batch, len}}),
      weights({"loss_weights", DType::F32, {batch, len}}) {}

static int64_t rows(const Batch &b) { return b.tokens.spec().shape[0]; }
static int64_t cols(const Batch &b) { return b.tokens.spec().shape[1]; }

//===----------------------------------------------------------------------===//
// ByteCorpus
//===----------------------------------------------------------------------===//

Status ByteCorpus::open(const std::string &path, int64_t begin, int64_t end,
                        int64_t len, std::unique_ptr<ByteCorpus> &out) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return Status::fail(path + ": cannot open");
  int64_t size = in.tellg();
  if (end < 0)
    end = size;
  if (begin < 0 || begin > end || end > size)
    return Status::fail(path + ": byte range [" + std::to_string(begin) + ", " +
                        std::to_string(end) + ") is outside the " +
                        std::to_string(size) + "-byte file");
  if (end - begin < len + 1)
    return Status::fail(path + ": byte range [" + std::to_string(begin) + ", " +
                        std::to_string(end) +
                        ") is shorter than one window of " +
                        std::to_string(len + 1) + " bytes");
  auto corpus = std::make_unique<ByteCorpus>();
  corpus->data_.resize(end - begin);
  in.seekg(begin);
  if (!in.read(reinterpret_cast<char *>(corpus->data_.data()), end - begin))
    return Status::fail(path + ": read error");
  corpus->len_ = len;
  out = std::move(corpus);
  return Status::ok();
}

void ByteCorpus::window(int64_t offset, Batch &out, int64_t row) const {
  int32_t *tokens = out.tokens.as<int32_t>() + row * len_;
  int32_t *targets = out.targets.as<int32_t>() + row * len_;
  float *weights = out.weights.as<float>() + row * len_;
  for (int64_t i = 0; i < len_; ++i) {
    tokens[i] = data_[offset + i];
    targets[i] = data_[offset + i + 1];
    weights[i] = 1.0f;
  }
}

void ByteCorpus::sample(Rng &rng, Batch &out) const {
  int64_t windows = int64_t(data_.size()) - len_;
  for (int64_t row = 0; row < rows(out); ++row)
    window(int64_t(rng.below(windows)), out, row);
}

void ByteCorpus::evalBatch(int64_t index, Batch &out) const {
  // Consecutive non-overlapping windows from the start, wrapping around.
  int64_t windows = (int64_t(data_.size()) - 1) / len_;
  for (int64_t row = 0; row < rows(out); ++row)
    window(((index * rows(out) + row) % windows) * len_, out, row);
}

//===----------------------------------------------------------------------===//
// DuplicationTask
//===----------------------------------------------------------------------===//

void DuplicationTask::sequence(Rng &rng, Batch &out, int64_t row) const {
  int64_t half = len_ / 2;
  std::vector<int32_t> seq(len_, 0);
  for (int64_t i = 1; i < half; ++i) {
    seq[i] = 1 + int32_t(rng.below(vocab_ - 1));
    seq[half + i] = seq[i];
  }
  int32_t *tokens = out.tokens.as<int32_t>() + row * len_;
  int32_t *targets = out.targets.as<int32_t>() + row * len_;
  float *weights = out.weights.as<float>() + row * len_;
  for (int64_t i = 0; i < len_; ++i) {
    tokens[i] = seq[i];
    targets[i] = i + 1 < len_ ? seq[i + 1] : 0;
    // Position i predicts seq[i + 1]: count the second copy of w.
    weights[i] = (i >= half && i + 1 < 2 * half) ? 1.0f : 0.0f;
  }
}

void DuplicationTask::sample(Rng &rng, Batch &out) const {
  for (int64_t row = 0; row < rows(out); ++row)
    sequence(rng, out, row);
}

void DuplicationTask::evalBatch(int64_t index, Batch &out) const {
  Rng rng{0xE7A1ULL + uint64_t(index)};
  sample(rng, out);
}

//===----------------------------------------------------------------------===//
// ImagePixels
//===----------------------------------------------------------------------===//

static bool readAll(const std::string &path, std::vector<uint8_t> &out) {
  gzFile file = gzopen(path.c_str(), "rb"); // reads plain files as well
  if (!file)
    return false;
  uint8_t buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0)
    out.insert(out.end(), buffer, buffer + n);
  bool ok = n == 0;
  gzclose(file);
  return ok;
}

static uint32_t bigEndian(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 |
         p[3];
}

/// Little-endian integers of a zip header.
static uint32_t le(const uint8_t *p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = v << 8 | p[i];
  return v;
}

/// The member `name` of a zip archive (stored or deflated), as written by
/// numpy's savez / savez_compressed.
static Status zipMember(const std::vector<uint8_t> &zip,
                        const std::string &name, std::vector<uint8_t> &out) {
  // The end-of-central-directory record: its signature, scanning back.
  int64_t end = int64_t(zip.size()) - 22;
  while (end >= 0 && le(&zip[end], 4) != 0x06054b50)
    --end;
  if (end < 0)
    return Status::fail("not a zip (npz) archive");
  uint32_t entries = le(&zip[end + 10], 2);
  size_t at = le(&zip[end + 16], 4);
  for (uint32_t k = 0; k < entries; ++k) {
    if (at + 46 > zip.size() || le(&zip[at], 4) != 0x02014b50)
      return Status::fail("corrupt zip central directory");
    uint32_t method = le(&zip[at + 10], 2);
    size_t packed = le(&zip[at + 20], 4), size = le(&zip[at + 24], 4);
    size_t nameLen = le(&zip[at + 28], 2), extraLen = le(&zip[at + 30], 2),
           commentLen = le(&zip[at + 32], 2);
    size_t local = le(&zip[at + 42], 4);
    std::string member(zip.begin() + at + 46, zip.begin() + at + 46 + nameLen);
    at += 46 + nameLen + extraLen + commentLen;
    if (member != name)
      continue;
    if (local + 30 > zip.size())
      return Status::fail("corrupt zip member");
    size_t data =
        local + 30 + le(&zip[local + 26], 2) + le(&zip[local + 28], 2);
    if (data + packed > zip.size())
      return Status::fail("truncated zip member '" + name + "'");
    out.resize(size);
    if (method == 0) {
      std::memcpy(out.data(), &zip[data], size);
      return Status::ok();
    }
    if (method != 8)
      return Status::fail("zip member '" + name + "' uses compression " +
                          std::to_string(method) + " (stored or deflate only)");
    z_stream z{};
    inflateInit2(&z, -15); // raw deflate
    z.next_in = const_cast<Bytef *>(&zip[data]);
    z.avail_in = uInt(packed);
    z.next_out = out.data();
    z.avail_out = uInt(size);
    int result = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (result != Z_STREAM_END)
      return Status::fail("cannot inflate zip member '" + name + "'");
    return Status::ok();
  }
  return Status::fail("no member '" + name + "'");
}

Status ImagePixels::open(const std::string &path, int64_t len,
                         std::unique_ptr<ImagePixels> &out) {
  std::vector<uint8_t> bytes;
  if (!readAll(path, bytes))
    return Status::fail(path + ": cannot read");
  auto images = std::make_unique<ImagePixels>();
  if (bytes.size() >= 4 && le(bytes.data(), 4) == 0x04034b50) {
    // imagenet64's layout: an .npz whose 'data' is uint8 [N, 3·S·S], each
    // row the R, then G, then B plane of an S × S image.
    std::vector<uint8_t> npy;
    if (Status s = zipMember(bytes, "data.npy", npy); !s)
      return Status::fail(path + ": " + s.error);
    if (npy.size() < 10 || std::memcmp(npy.data(), "\x93NUMPY", 6) != 0)
      return Status::fail(path + ": 'data' is not an .npy array");
    size_t headerLen = npy[6] == 1 ? le(&npy[8], 2) : le(&npy[8], 4);
    size_t start = (npy[6] == 1 ? 10 : 12) + headerLen;
    std::string header(npy.begin() + (npy[6] == 1 ? 10 : 12),
                       npy.begin() + start);
    long long n = 0, d = 0;
    size_t shape = header.find("'shape': (");
    if (header.find("'|u1'") == std::string::npos ||
        header.find("'fortran_order': False") == std::string::npos ||
        shape == std::string::npos ||
        std::sscanf(header.c_str() + shape, "'shape': (%lld, %lld)", &n, &d) !=
            2)
      return Status::fail(path +
                          ": 'data' must be a C-order uint8 array "
                          "[N, 3·S·S], got header " +
                          header);
    int64_t side = int64_t(std::lround(std::sqrt(double(d) / 3)));
    if (3 * side * side != d || start + size_t(n * d) > npy.size())
      return Status::fail(path + ": 'data' rows of " + std::to_string(d) +
                          " values are not 3 planes of a square image");
    images->count_ = n;
    images->pixelsPerImage_ = d;
    // Raster order with the channels of a pixel together: (r, c, RGB).
    images->pixels_.resize(size_t(n * d));
    int64_t plane = side * side;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < plane; ++p)
        for (int64_t ch = 0; ch < 3; ++ch)
          images->pixels_[i * d + p * 3 + ch] =
              npy[start + i * d + ch * plane + p];
  } else {
    // IDX: magic 0x00000803 (unsigned bytes, 3 dimensions), then the sizes.
    if (bytes.size() < 16 || bigEndian(bytes.data()) != 0x803)
      return Status::fail(path + ": not an IDX image file (magic 0x00000803) "
                                 "or an imagenet64 .npz");
    int64_t count = bigEndian(&bytes[4]);
    int64_t pixels = int64_t(bigEndian(&bytes[8])) * bigEndian(&bytes[12]);
    if (int64_t(bytes.size()) != 16 + count * pixels)
      return Status::fail(path + ": truncated IDX file");
    images->pixels_.assign(bytes.begin() + 16, bytes.end());
    images->count_ = count;
    images->pixelsPerImage_ = pixels;
  }
  if (images->pixelsPerImage_ > len)
    return Status::fail(path + ": images have " +
                        std::to_string(images->pixelsPerImage_) +
                        " pixels, more than the model's sequence length " +
                        std::to_string(len));
  images->len_ = len;
  out = std::move(images);
  return Status::ok();
}

void ImagePixels::image(int64_t index, Batch &out, int64_t row) const {
  const uint8_t *px = &pixels_[index * pixelsPerImage_];
  int32_t *tokens = out.tokens.as<int32_t>() + row * len_;
  int32_t *targets = out.targets.as<int32_t>() + row * len_;
  float *weights = out.weights.as<float>() + row * len_;
  // Token 0 starts the image; each position predicts the next pixel.
  for (int64_t i = 0; i < len_; ++i) {
    bool inImage = i < pixelsPerImage_;
    tokens[i] = i == 0 ? 0 : (i - 1 < pixelsPerImage_ ? px[i - 1] : 0);
    targets[i] = inImage ? px[i] : 0;
    weights[i] = inImage ? 1.0f : 0.0f;
  }
}

void ImagePixels::sample(Rng &rng, Batch &out) const {
  for (int64_t row = 0; row < rows(out); ++row)
    image(int64_t(rng.below(count_)), out, row);
}

void ImagePixels::evalBatch(int64_t index, Batch &out) const {
  for (int64_t row = 0; row < rows(out); ++row)
    image((index * rows(out) + row) % count_, out, row);
}

} // namespace reformer::runtime
