//===- Safetensors.h - Reading and writing .safetensors files ---*- C++ -*-===//
//
// The format of Hugging Face checkpoints: an 8-byte little-endian header
// length, a JSON header mapping tensor names to dtype, shape and byte
// offsets, then the data. Only what the runtime needs: F32/F64/F16/BF16/
// I32/I64/BOOL tensors, C order.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_RUNTIME_SAFETENSORS_H
#define REFORMER_RUNTIME_SAFETENSORS_H

#include "reformer/Runtime/Tensor.h"

#include <map>

namespace reformer::runtime {

/// Reads every tensor of `path`; errors name the file and what is wrong.
Status readSafetensors(const std::string &path,
                       std::map<std::string, Tensor> &out);

/// Writes `tensors` to `path` atomically (temporary file + rename).
Status writeSafetensors(const std::string &path,
                        const std::map<std::string, Tensor> &tensors);

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_SAFETENSORS_H
