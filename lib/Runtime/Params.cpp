//===- Params.cpp - Model parameters: initialization and files ------------===//

#include "reformer/Runtime/Params.h"

#include "reformer/Runtime/Npy.h"

#include <algorithm>
#include <random>

namespace reformer::runtime {

static bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status initParams(const FunctionAbi &function, uint64_t seed, ParamMap &out) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const ArgAbi &arg : function.args) {
    if (arg.kind != ArgKind::Param)
      continue;
    if (arg.spec.dtype != DType::F32)
      return Status::fail("parameter '" + arg.spec.name + "' is " +
                          arg.spec.describe() +
                          ": initialization supports f32 only");
    Tensor t(arg.spec);
    float *p = t.as<float>();
    int64_t n = arg.spec.numElements();
    bool norm = arg.spec.name.find("layer_norm") != std::string::npos;
    for (int64_t i = 0; i < n; ++i) {
      if (norm)
        p[i] = endsWith(arg.spec.name, ".weight") ? 1.0f : 0.0f;
      else if (endsWith(arg.spec.name, ".bias"))
        p[i] = 0.0f;
      else
        p[i] = normal(rng);
    }
    out[arg.spec.name] = std::move(t);
  }
  return Status::ok();
}

Status loadParams(const FunctionAbi &function, const std::string &dir,
                  ParamMap &out) {
  for (const ArgAbi &arg : function.args) {
    if (arg.kind != ArgKind::Param)
      continue;
    std::string path = dir + "/" + arg.spec.name + ".npy";
    Tensor t;
    if (Status s = readNpy(path, t); !s)
      return s;
    if (t.spec().dtype != arg.spec.dtype || t.spec().shape != arg.spec.shape)
      return Status::fail(path + ": expected " + arg.spec.describe() +
                          ", got " + t.spec().describe());
    TensorSpec named = t.spec();
    named.name = arg.spec.name;
    Tensor renamed(named);
    std::copy_n(static_cast<const char *>(t.data()), named.numBytes(),
                static_cast<char *>(renamed.data()));
    out[arg.spec.name] = std::move(renamed);
  }
  return Status::ok();
}

Status saveParams(const ParamMap &params, const std::string &dir) {
  for (const auto &[name, tensor] : params)
    if (Status s = writeNpy(dir + "/" + name + ".npy", tensor); !s)
      return s;
  return Status::ok();
}

} // namespace reformer::runtime
