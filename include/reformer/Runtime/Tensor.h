//===- Tensor.h - Tensors the runtime allocates and moves -------*- C++ -*-===//
//
// The runtime has no MLIR dependency: it knows tensors only as an element
// type, a shape and bytes.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_RUNTIME_TENSOR_H
#define REFORMER_RUNTIME_TENSOR_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace reformer::runtime {

enum class DType { F32, F64, F16, BF16, I1, I32, I64 };

/// "f32", "i32", … as in the ABI manifest.
std::optional<DType> parseDType(const std::string &name);
const char *dtypeName(DType dtype);
size_t dtypeSize(DType dtype);

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  int64_t numElements() const;
  size_t numBytes() const { return numElements() * dtypeSize(dtype); }
  /// `f32 [2, 3]`.
  std::string describe() const;
};

/// A 64-byte aligned, owned buffer.
class Tensor {
public:
  Tensor() = default;
  explicit Tensor(TensorSpec spec);
  const TensorSpec &spec() const { return spec_; }
  void *data() { return data_.get(); }
  const void *data() const { return data_.get(); }
  template <typename T> T *as() { return static_cast<T *>(data()); }
  template <typename T> const T *as() const {
    return static_cast<const T *>(data());
  }

private:
  struct Free {
    void operator()(void *p) const;
  };
  TensorSpec spec_;
  std::unique_ptr<void, Free> data_;
};

/// An error message, empty on success.
struct Status {
  std::string error;
  static Status ok() { return {}; }
  static Status fail(std::string message) { return {std::move(message)}; }
  explicit operator bool() const { return error.empty(); }
};

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_TENSOR_H
