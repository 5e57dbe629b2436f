//===- Tensor.cpp - Tensors the runtime allocates and moves ---------------===//

#include "reformer/Runtime/Tensor.h"

#include <cstdlib>
#include <cstring>

namespace reformer::runtime {

namespace {
struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "f32", 4},   {DType::F64, "f64", 8}, {DType::F16, "f16", 2},
    {DType::BF16, "bf16", 2}, {DType::I1, "i1", 1},   {DType::I32, "i32", 4},
    {DType::I64, "i64", 8}};
} // namespace

std::optional<DType> parseDType(const std::string &name) {
  for (const DTypeInfo &info : kDTypes)
    if (name == info.name)
      return info.dtype;
  return std::nullopt;
}

const char *dtypeName(DType dtype) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == dtype)
      return info.name;
  return "?";
}

size_t dtypeSize(DType dtype) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == dtype)
      return info.size;
  return 0;
}

int64_t TensorSpec::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string TensorSpec::describe() const {
  std::string s = std::string(dtypeName(dtype)) + " [";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void Tensor::Free::operator()(void *p) const { std::free(p); }

Tensor::Tensor(TensorSpec spec) : spec_(std::move(spec)) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  size_t bytes = (spec_.numBytes() + 63) / 64 * 64;
  data_.reset(std::aligned_alloc(64, bytes ? bytes : 64));
  std::memset(data_.get(), 0, bytes ? bytes : 64);
}

} // namespace reformer::runtime
