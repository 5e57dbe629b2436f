//===- Npy.h - Reading and writing .npy files -------------------*- C++ -*-===//

#ifndef REFORMER_RUNTIME_NPY_H
#define REFORMER_RUNTIME_NPY_H

#include "reformer/Runtime/Tensor.h"

namespace reformer::runtime {

/// Reads a little-endian, C-order .npy file (f4, f8, f2, i4, i8, b1).
/// Errors name the file and what was wrong.
Status readNpy(const std::string &path, Tensor &out);

/// Writes `tensor` as .npy, atomically: a temporary file renamed over
/// `path`, so an existing file is never left half-written.
Status writeNpy(const std::string &path, const Tensor &tensor);

/// Writes `bytes` to `path` atomically (temporary file + rename).
Status writeFileAtomically(const std::string &path, const std::string &bytes);

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_NPY_H
