//===- Npy.cpp - Reading and writing .npy files ---------------------------===//

#include "reformer/Runtime/Npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace reformer::runtime {

namespace {

struct NpyType {
  const char *descr;
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {{"<f4", DType::F32}, {"<f8", DType::F64},
                                 {"<f2", DType::F16}, {"<i4", DType::I32},
                                 {"<i8", DType::I64}, {"|b1", DType::I1}};

/// The value of `'key': value` in the header dict, up to `end` characters.
std::string field(const std::string &header, const std::string &key) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos)
    return "";
  size_t colon = header.find(':', at);
  if (colon == std::string::npos)
    return "";
  size_t start = header.find_first_not_of(' ', colon + 1);
  if (start == std::string::npos)
    return "";
  char open = header[start];
  size_t end = open == '('    ? header.find(')', start) + 1
               : open == '\'' ? header.find('\'', start + 1) + 1
                              : header.find_first_of(",}", start);
  return header.substr(start, end - start);
}

} // namespace

Status readNpy(const std::string &path, Tensor &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::fail(path + ": cannot open: " + std::strerror(errno));
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    return Status::fail(path + ": not a .npy file (bad magic)");
  uint32_t headerLen = 0;
  if (magic[6] == 1) {
    unsigned char len[2];
    in.read(reinterpret_cast<char *>(len), 2);
    headerLen = len[0] | (len[1] << 8);
  } else {
    unsigned char len[4];
    in.read(reinterpret_cast<char *>(len), 4);
    headerLen =
        len[0] | (len[1] << 8) | (len[2] << 16) | (uint32_t(len[3]) << 24);
  }
  std::string header(headerLen, '\0');
  if (!in.read(header.data(), headerLen))
    return Status::fail(path + ": truncated .npy header");

  std::string descr = field(header, "descr");
  if (descr.size() >= 2)
    descr = descr.substr(1, descr.size() - 2);
  TensorSpec spec;
  bool known = false;
  for (const NpyType &t : kNpyTypes)
    if (descr == t.descr) {
      spec.dtype = t.dtype;
      known = true;
    }
  if (!known)
    return Status::fail(path + ": unsupported dtype '" + descr +
                        "' (expected <f4, <f8, <f2, <i4, <i8 or |b1)");
  if (field(header, "fortran_order") != "False")
    return Status::fail(path + ": Fortran-order arrays are not supported");
  std::string shape = field(header, "shape");
  std::istringstream dims(shape.size() >= 2 ? shape.substr(1, shape.size() - 2)
                                            : "");
  std::string dim;
  while (std::getline(dims, dim, ',')) {
    if (dim.find_first_not_of(' ') == std::string::npos)
      continue;
    spec.shape.push_back(std::stoll(dim));
  }
  out = Tensor(spec);
  if (!in.read(static_cast<char *>(out.data()), spec.numBytes()))
    return Status::fail(path + ": truncated data: expected " +
                        std::to_string(spec.numBytes()) + " bytes for " +
                        spec.describe());
  return Status::ok();
}

Status writeFileAtomically(const std::string &path, const std::string &bytes) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !out.write(bytes.data(), bytes.size()) || !out.flush()) {
      std::remove(tmp.c_str());
      return Status::fail(path + ": cannot write: " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::fail(path + ": cannot write: " + why);
  }
  return Status::ok();
}

Status writeNpy(const std::string &path, const Tensor &tensor) {
  const TensorSpec &spec = tensor.spec();
  const char *descr = nullptr;
  for (const NpyType &t : kNpyTypes)
    if (t.dtype == spec.dtype)
      descr = t.descr;
  if (!descr)
    return Status::fail(path + ": " + dtypeName(spec.dtype) +
                        " has no .npy type");
  std::string shape = "(";
  for (int64_t d : spec.shape)
    shape += std::to_string(d) + ",";
  if (spec.shape.size() > 1)
    shape.pop_back();
  shape += ")";
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad so the data starts on a 64-byte boundary; the header ends in '\n'.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  bytes.append(static_cast<const char *>(tensor.data()), spec.numBytes());
  return writeFileAtomically(path, bytes);
}

} // namespace reformer::runtime
