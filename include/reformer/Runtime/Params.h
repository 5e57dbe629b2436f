//===- Params.h - Model parameters: initialization and files ----*- C++ -*-===//

#ifndef REFORMER_RUNTIME_PARAMS_H
#define REFORMER_RUNTIME_PARAMS_H

#include "reformer/Runtime/Module.h"

namespace reformer::runtime {

/// Parameters by ABI name.
using ParamMap = std::map<std::string, Tensor>;

/// Deterministic initialization from `seed`: layer-norm weights 1, biases
/// 0, everything else N(0, 0.02²) (trax / Hugging Face defaults), f32 only.
Status initParams(const FunctionAbi &function, uint64_t seed, ParamMap &out);

/// Reads every parameter from `path`: a `.safetensors` file, or a
/// directory of `<name>.npy` files; checks each type and shape.
Status loadParams(const FunctionAbi &function, const std::string &path,
                  ParamMap &out);

/// Writes every parameter to `path`: one `.safetensors` file, or
/// `<name>.npy` files in a directory; each file atomically.
Status saveParams(const ParamMap &params, const std::string &path);

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_PARAMS_H
