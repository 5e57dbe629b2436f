//===- DataTest.cpp - Training data sources and the loss plot -------------===//

#include "reformer/Runtime/Data.h"
#include "reformer/Runtime/LossPlot.h"

#include "gtest/gtest.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>

using namespace reformer::runtime;

namespace {

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/" + name;
}

TEST(Data, RngIsDeterministicAndResumable) {
  Rng a{42}, b{42};
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(a.next(), b.next());
  Rng c{a.state};
  EXPECT_EQ(a.next(), c.next()) << "the state alone continues the stream";
}

TEST(Data, DuplicationIsZeroWZeroWWithLossOnTheSecondCopy) {
  DuplicationTask task(16, 10);
  Batch batch(3, 16);
  Rng rng{7};
  task.sample(rng, batch);
  for (int64_t row = 0; row < 3; ++row) {
    const int32_t *t = batch.tokens.as<int32_t>() + row * 16;
    const int32_t *y = batch.targets.as<int32_t>() + row * 16;
    const float *w = batch.weights.as<float>() + row * 16;
    EXPECT_EQ(t[0], 0);
    EXPECT_EQ(t[8], 0);
    for (int i = 1; i < 8; ++i) {
      EXPECT_GE(t[i], 1);
      EXPECT_LT(t[i], 10);
      EXPECT_EQ(t[8 + i], t[i]);
    }
    for (int i = 0; i + 1 < 16; ++i)
      EXPECT_EQ(y[i], t[i + 1]);
    // Positions 8 … 14 predict the second copy of w.
    for (int i = 0; i < 16; ++i)
      EXPECT_EQ(w[i], (i >= 8 && i < 15) ? 1.0f : 0.0f) << i;
  }
  // Evaluation batches do not depend on any stream state.
  Batch e1(2, 16), e2(2, 16);
  task.evalBatch(3, e1);
  task.evalBatch(3, e2);
  EXPECT_EQ(0, std::memcmp(e1.tokens.data(), e2.tokens.data(),
                           e1.tokens.spec().numBytes()));
}

TEST(Data, ByteCorpusWindowsAndRanges) {
  std::string path = tempPath("bytes.bin");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 100; ++i)
      out.put(char(i));
  }
  std::unique_ptr<ByteCorpus> corpus;
  ASSERT_TRUE(ByteCorpus::open(path, 10, 60, 8, corpus));
  EXPECT_EQ(corpus->size(), 50);
  Batch batch(4, 8);
  Rng rng{1};
  corpus->sample(rng, batch);
  for (int64_t row = 0; row < 4; ++row) {
    const int32_t *t = batch.tokens.as<int32_t>() + row * 8;
    const int32_t *y = batch.targets.as<int32_t>() + row * 8;
    EXPECT_GE(t[0], 10);
    EXPECT_LE(y[7], 59) << "windows stay inside the range";
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(y[i], t[i] + 1);
  }
  Status tooShort = ByteCorpus::open(path, 0, 5, 8, corpus);
  EXPECT_FALSE(tooShort);
  EXPECT_NE(tooShort.error.find("shorter than one window of 9 bytes"),
            std::string::npos)
      << tooShort.error;
  EXPECT_FALSE(ByteCorpus::open(path, 0, 500, 8, corpus));
  EXPECT_FALSE(ByteCorpus::open(tempPath("absent.bin"), 0, -1, 8, corpus));
}

/// An IDX image file of `count` 2×3 images, pixel value = image + pixel.
void writeIdx(const std::string &path, int count, bool gzip) {
  std::string bytes = {0, 0, 8, 3, 0, 0, 0, char(count),
                       0, 0, 0, 2, 0, 0, 0, 3};
  for (int n = 0; n < count; ++n)
    for (int p = 0; p < 6; ++p)
      bytes.push_back(char(n * 10 + p));
  if (!gzip) {
    std::ofstream(path, std::ios::binary) << bytes;
    return;
  }
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
}

TEST(Data, ImagesArePixelSequences) {
  for (bool gzip : {false, true}) {
    std::string path = tempPath(gzip ? "images.gz" : "images.idx");
    writeIdx(path, 4, gzip);
    std::unique_ptr<ImagePixels> images;
    ASSERT_TRUE(ImagePixels::open(path, 8, images)) << path;
    EXPECT_EQ(images->count(), 4);
    Batch batch(2, 8);
    images->evalBatch(1, batch); // images 2 and 3
    const int32_t *t = batch.tokens.as<int32_t>() + 8;
    const int32_t *y = batch.targets.as<int32_t>() + 8;
    const float *w = batch.weights.as<float>() + 8;
    EXPECT_EQ(t[0], 0);
    for (int p = 0; p < 6; ++p) {
      EXPECT_EQ(y[p], 30 + p);
      EXPECT_EQ(w[p], 1.0f);
    }
    EXPECT_EQ(t[1], 30);
    EXPECT_EQ(w[6], 0.0f) << "padding past the image does not count";
  }
  std::unique_ptr<ImagePixels> images;
  Status tooLong = ImagePixels::open(tempPath("images.idx"), 4, images);
  EXPECT_FALSE(tooLong);
  EXPECT_NE(tooLong.error.find("more than the model's sequence length 4"),
            std::string::npos);
  std::ofstream(tempPath("notidx"), std::ios::binary) << "not an idx file!";
  Status bad = ImagePixels::open(tempPath("notidx"), 8, images);
  EXPECT_NE(bad.error.find("not an IDX image file"), std::string::npos);
}

/// A zip archive with one member (method 0: stored, 8: raw deflate), the
/// way numpy's savez writes an .npz.
std::string zipWith(const std::string &name, const std::string &data,
                    int method) {
  std::string packed = data;
  if (method == 8) {
    z_stream z{};
    deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    packed.resize(deflateBound(&z, uLong(data.size())));
    z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
    z.avail_in = uInt(data.size());
    z.next_out = reinterpret_cast<Bytef *>(packed.data());
    z.avail_out = uInt(packed.size());
    deflate(&z, Z_FINISH);
    packed.resize(z.total_out);
    deflateEnd(&z);
  }
  auto le = [](std::string &out, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      out.push_back(char(v >> (8 * i)));
  };
  uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef *>(data.data()),
                                uInt(data.size())));
  std::string zip;
  le(zip, 0x04034b50, 4);
  le(zip, 20, 2), le(zip, 0, 2), le(zip, method, 2), le(zip, 0, 4);
  le(zip, crc, 4), le(zip, uint32_t(packed.size()), 4);
  le(zip, uint32_t(data.size()), 4), le(zip, uint32_t(name.size()), 2);
  le(zip, 0, 2);
  zip += name + packed;
  uint32_t central = uint32_t(zip.size());
  le(zip, 0x02014b50, 4);
  le(zip, 20, 2), le(zip, 20, 2), le(zip, 0, 2), le(zip, method, 2);
  le(zip, 0, 4), le(zip, crc, 4), le(zip, uint32_t(packed.size()), 4);
  le(zip, uint32_t(data.size()), 4), le(zip, uint32_t(name.size()), 2);
  le(zip, 0, 2), le(zip, 0, 2), le(zip, 0, 2), le(zip, 0, 2), le(zip, 0, 4);
  le(zip, 0, 4);
  zip += name;
  uint32_t centralSize = uint32_t(zip.size()) - central;
  le(zip, 0x06054b50, 4);
  le(zip, 0, 2), le(zip, 0, 2), le(zip, 1, 2), le(zip, 1, 2);
  le(zip, centralSize, 4), le(zip, central, 4), le(zip, 0, 2);
  return zip;
}

TEST(Data, Imagenet64NpzIsRasterOrderRgb) {
  // Two 2 × 2 images as R, G, B planes: value = 100·image + 10·channel +
  // pixel.
  std::string npy = "\x93NUMPY";
  npy += std::string("\x01\x00", 2);
  std::string header =
      "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 12), }";
  header += std::string(64 - (10 + header.size() + 1) % 64, ' ') + "\n";
  npy.push_back(char(header.size()));
  npy.push_back(0);
  npy += header;
  for (int image = 0; image < 2; ++image)
    for (int ch = 0; ch < 3; ++ch)
      for (int p = 0; p < 4; ++p)
        npy.push_back(char(100 * image + 10 * ch + p));
  for (int method : {0, 8}) {
    std::string path = tempPath("images" + std::to_string(method) + ".npz");
    std::ofstream(path, std::ios::binary) << zipWith("data.npy", npy, method);
    std::unique_ptr<ImagePixels> images;
    Status opened = ImagePixels::open(path, 16, images);
    ASSERT_TRUE(opened) << opened.error;
    EXPECT_EQ(images->count(), 2);
    Batch batch(1, 16);
    images->evalBatch(1, batch);
    const int32_t *y = batch.targets.as<int32_t>();
    // Pixel p's R, G, B, then the next pixel's.
    for (int p = 0; p < 4; ++p)
      for (int ch = 0; ch < 3; ++ch)
        EXPECT_EQ(y[3 * p + ch], 100 + 10 * ch + p) << method;
    EXPECT_EQ(batch.weights.as<float>()[12], 0.0f);
  }
  std::string path = tempPath("other.npz");
  std::ofstream(path, std::ios::binary) << zipWith("labels.npy", npy, 0);
  std::unique_ptr<ImagePixels> images;
  Status missing = ImagePixels::open(path, 16, images);
  EXPECT_NE(missing.error.find("no member 'data.npy'"), std::string::npos)
      << missing.error;
}

TEST(LossPlot, WritesAPng) {
  std::string path = tempPath("loss.png");
  PlotSeries train{"train", {{1, 3.0}, {2, 2.0}, {3, 1.5}}, 0x0000FF};
  ASSERT_TRUE(writeLossPlot(path, {train}));
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  ASSERT_GT(data.size(), 33u);
  EXPECT_EQ(data.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(data.substr(12, 4), "IHDR");
  EXPECT_EQ(data.substr(data.size() - 8, 4), "IEND");
  EXPECT_FALSE(writeLossPlot(path, {PlotSeries{"empty", {}, 0}}));
}

} // namespace
