//===- LossPlot.h - Loss curves as PNG images -------------------*- C++ -*-===//

#ifndef REFORMER_RUNTIME_LOSSPLOT_H
#define REFORMER_RUNTIME_LOSSPLOT_H

#include "reformer/Runtime/Tensor.h"

namespace reformer::runtime {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points; ///< (step, value)
  uint32_t rgb;                                  ///< 0xRRGGBB
};

/// Draws the series as lines over a shared (step, loss) frame with the axis
/// ranges labelled, and writes an RGB PNG to `path` (temporary file +
/// rename).
Status writeLossPlot(const std::string &path,
                     const std::vector<PlotSeries> &series);

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_LOSSPLOT_H
