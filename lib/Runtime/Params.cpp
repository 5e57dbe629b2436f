//===- Params.cpp - Model parameters: initialization and files ------------===//

#include "reformer/Runtime/Params.h"

#include "reformer/Runtime/Npy.h"
#include "reformer/Runtime/Safetensors.h"

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

static bool isSafetensors(const std::string &path) {
  return endsWith(path, ".safetensors");
}

Status loadParams(const FunctionAbi &function, const std::string &path,
                  ParamMap &out) {
  std::map<std::string, Tensor> file;
  if (isSafetensors(path))
    if (Status s = readSafetensors(path, file); !s)
      return s;
  for (const ArgAbi &arg : function.args) {
    if (arg.kind != ArgKind::Param)
      continue;
    std::string where = path;
    Tensor t;
    if (isSafetensors(path)) {
      auto it = file.find(arg.spec.name);
      if (it == file.end())
        return Status::fail(path + ": no tensor '" + arg.spec.name + "' (" +
                            arg.spec.describe() + ")");
      t = std::move(it->second);
    } else {
      where = path + "/" + arg.spec.name + ".npy";
      if (Status s = readNpy(where, t); !s)
        return s;
    }
    if (t.spec().dtype != arg.spec.dtype || t.spec().shape != arg.spec.shape)
      return Status::fail(where + ": parameter '" + arg.spec.name +
                          "' expects " + arg.spec.describe() + ", got " +
                          t.spec().describe());
    Tensor named(arg.spec);
    std::copy_n(static_cast<const char *>(t.data()), arg.spec.numBytes(),
                static_cast<char *>(named.data()));
    out[arg.spec.name] = std::move(named);
  }
  return Status::ok();
}

Status saveParams(const ParamMap &params, const std::string &path) {
  if (isSafetensors(path))
    return writeSafetensors(path, params);
  for (const auto &[name, tensor] : params)
    if (Status s = writeNpy(path + "/" + name + ".npy", tensor); !s)
      return s;
  return Status::ok();
}

} // namespace reformer::runtime
