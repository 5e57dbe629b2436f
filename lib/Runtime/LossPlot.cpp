//===- LossPlot.cpp - Loss curves as PNG images ---------------------------===//
//
// A small rasterizer (lines, rectangles, a 3×5 pixel font for the axis
// numbers and names) and a PNG encoder on zlib: no plotting library.
//
//===----------------------------------------------------------------------===//

#include "reformer/Runtime/LossPlot.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

namespace reformer::runtime {

namespace {

constexpr int kWidth = 800, kHeight = 480;
constexpr int kLeft = 70, kRight = 20, kTop = 36, kBottom = 50;

/// 3×5 glyphs, one row per 3 bits (top row first).
const std::map<char, std::array<uint8_t, 5>> &font() {
  static const std::map<char, std::array<uint8_t, 5>> glyphs = {
      {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}},
      {'3', {7, 1, 7, 1, 7}}, {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}},
      {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 1, 1}}, {'8', {7, 5, 7, 5, 7}},
      {'9', {7, 5, 7, 1, 7}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}},
      {'a', {7, 5, 7, 5, 5}}, {'e', {7, 4, 7, 4, 7}}, {'i', {7, 2, 2, 2, 7}},
      {'l', {4, 4, 4, 4, 7}}, {'n', {6, 5, 5, 5, 5}}, {'o', {7, 5, 5, 5, 7}},
      {'p', {7, 5, 7, 4, 4}}, {'r', {6, 5, 6, 5, 5}}, {'s', {7, 4, 7, 1, 7}},
      {'t', {7, 2, 2, 2, 2}}, {'v', {5, 5, 5, 5, 2}}, {' ', {0, 0, 0, 0, 0}}};
  return glyphs;
}

struct Canvas {
  std::vector<uint8_t> rgb = std::vector<uint8_t>(kWidth * kHeight * 3, 255);

  void pixel(int x, int y, uint32_t color) {
    if (x < 0 || y < 0 || x >= kWidth || y >= kHeight)
      return;
    uint8_t *p = &rgb[(y * kWidth + x) * 3];
    p[0] = color >> 16;
    p[1] = color >> 8;
    p[2] = color;
  }
  /// A line two pixels thick (Bresenham).
  void line(int x0, int y0, int x1, int y1, uint32_t color) {
    int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    while (true) {
      pixel(x0, y0, color);
      pixel(x0 + 1, y0, color);
      pixel(x0, y0 + 1, color);
      if (x0 == x1 && y0 == y1)
        break;
      int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  /// Text at scale 2 (6×10 pixels per glyph plus spacing).
  void text(int x, int y, const std::string &s, uint32_t color) {
    for (char c : s) {
      auto it = font().find(c);
      if (it != font().end())
        for (int row = 0; row < 5; ++row)
          for (int col = 0; col < 3; ++col)
            if (it->second[row] & (4 >> col))
              for (int d = 0; d < 4; ++d)
                pixel(x + 2 * col + d % 2, y + 2 * row + d / 2, color);
      x += 8;
    }
  }
};

std::string number(double v, bool integer = false) {
  char buf[32];
  std::snprintf(buf, sizeof(buf),
                integer || std::fabs(v) >= 100 ? "%.0f" : "%.2f", v);
  return buf;
}

void chunk(std::string &png, const char *type, const std::string &data) {
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8)
      png.push_back(char(v >> s));
  };
  be32(uint32_t(data.size()));
  std::string body = std::string(type, 4) + data;
  png += body;
  be32(uint32_t(crc32(0, reinterpret_cast<const Bytef *>(body.data()),
                      uInt(body.size()))));
}

} // namespace

Status writeLossPlot(const std::string &path,
                     const std::vector<PlotSeries> &series) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const PlotSeries &s : series)
    for (auto [x, y] : s.points)
      if (std::isfinite(y)) {
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
  if (!std::isfinite(x0))
    return Status::fail(path + ": nothing to plot");
  if (x1 == x0)
    x1 = x0 + 1;
  if (y1 == y0)
    y1 = y0 + 1;
  y0 = std::max(0.0, y0 - 0.05 * (y1 - y0));

  Canvas c;
  int plotW = kWidth - kLeft - kRight, plotH = kHeight - kTop - kBottom;
  auto px = [&](double x) {
    return kLeft + int(std::lround((x - x0) / (x1 - x0) * plotW));
  };
  auto py = [&](double y) {
    return kTop + plotH - int(std::lround((y - y0) / (y1 - y0) * plotH));
  };
  // Grid and frame, then the axis ranges and names.
  for (int k = 0; k <= 4; ++k) {
    double y = y0 + (y1 - y0) * k / 4;
    for (int x = kLeft; x <= kLeft + plotW; x += 4)
      c.pixel(x, py(y), 0xDDDDDD);
    c.text(4, py(y) - 5, number(y), 0x444444);
  }
  c.line(kLeft, kTop, kLeft, kTop + plotH, 0x000000);
  c.line(kLeft, kTop + plotH, kLeft + plotW, kTop + plotH, 0x000000);
  c.text(kLeft, kTop + plotH + 8, number(x0, true), 0x444444);
  std::string last = number(x1, true);
  c.text(kLeft + plotW - 8 * int(last.size()), kTop + plotH + 8, last,
         0x444444);
  c.text(kLeft + plotW / 2 - 16, kTop + plotH + 26, "step", 0x000000);
  c.text(4, 4, "loss", 0x000000);
  // Series, with their names as a legend.
  int legendX = kLeft + plotW - 120;
  for (size_t i = 0; i < series.size(); ++i) {
    const std::vector<std::pair<double, double>> &points = series[i].points;
    uint32_t color = series[i].rgb;
    for (size_t k = 1; k < points.size(); ++k)
      if (std::isfinite(points[k - 1].second) &&
          std::isfinite(points[k].second))
        c.line(px(points[k - 1].first), py(points[k - 1].second),
               px(points[k].first), py(points[k].second), color);
    if (points.size() == 1)
      c.line(px(points[0].first) - 2, py(points[0].second),
             px(points[0].first) + 2, py(points[0].second), color);
    int ly = kTop + 10 + 16 * int(i);
    c.line(legendX, ly + 4, legendX + 20, ly + 4, color);
    c.text(legendX + 28, ly, series[i].name, 0x000000);
  }

  // PNG: signature, IHDR (8-bit RGB), one deflated IDAT, IEND.
  std::string raw;
  for (int y = 0; y < kHeight; ++y) {
    raw.push_back(0); // filter: none
    raw.append(reinterpret_cast<const char *>(&c.rgb[y * kWidth * 3]),
               kWidth * 3);
  }
  uLongf size = compressBound(uLong(raw.size()));
  std::string deflated(size, '\0');
  if (compress2(reinterpret_cast<Bytef *>(deflated.data()), &size,
                reinterpret_cast<const Bytef *>(raw.data()), uLong(raw.size()),
                9) != Z_OK)
    return Status::fail(path + ": compression failed");
  deflated.resize(size);
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  for (uint32_t v : {uint32_t(kWidth), uint32_t(kHeight)})
    for (int s = 24; s >= 0; s -= 8)
      ihdr.push_back(char(v >> s));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", deflated);
  chunk(png, "IEND", "");

  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out.write(png.data(), std::streamsize(png.size())))
      return Status::fail(temp + ": cannot write");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0)
    return Status::fail(path + ": cannot rename " + temp + " into place");
  return Status::ok();
}

} // namespace reformer::runtime
