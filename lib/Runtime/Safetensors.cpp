//===- Safetensors.cpp - Reading and writing .safetensors files -----------===//

#include "reformer/Runtime/Safetensors.h"

#include "reformer/Runtime/Npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace reformer::runtime {

namespace {

struct SafeType {
  const char *name;
  DType dtype;
};
constexpr SafeType kSafeTypes[] = {{"F32", DType::F32}, {"F64", DType::F64},
                                   {"F16", DType::F16}, {"BF16", DType::BF16},
                                   {"I32", DType::I32}, {"I64", DType::I64},
                                   {"BOOL", DType::I1}};

/// A minimal JSON reader for the header: objects, arrays, strings, numbers.
class HeaderParser {
public:
  explicit HeaderParser(const std::string &text) : s(text) {}

  struct Entry {
    std::string dtype;
    std::vector<int64_t> shape;
    int64_t begin = -1, end = -1;
  };

  bool parse(std::map<std::string, Entry> &out) {
    if (!consume('{'))
      return false;
    if (consume('}'))
      return true;
    do {
      std::string name;
      if (!string(name) || !consume(':'))
        return false;
      if (name == "__metadata__") {
        if (!skipValue())
          return false;
        continue;
      }
      Entry entry;
      if (!tensor(entry))
        return false;
      out[name] = entry;
    } while (consume(','));
    return consume('}');
  }

  std::string error() const {
    return "malformed header near byte " + std::to_string(pos);
  }

private:
  void space() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos])))
      ++pos;
  }
  bool consume(char c) {
    space();
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  bool string(std::string &out) {
    if (!consume('"'))
      return false;
    while (pos < s.size() && s[pos] != '"') {
      if (s[pos] == '\\' && pos + 1 < s.size())
        ++pos;
      out.push_back(s[pos++]);
    }
    return consume('"');
  }
  bool integer(int64_t &out) {
    space();
    size_t start = pos;
    if (pos < s.size() && s[pos] == '-')
      ++pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])))
      ++pos;
    if (start == pos)
      return false;
    out = std::stoll(s.substr(start, pos - start));
    return true;
  }
  bool integers(std::vector<int64_t> &out) {
    if (!consume('['))
      return false;
    if (consume(']'))
      return true;
    do {
      int64_t v;
      if (!integer(v))
        return false;
      out.push_back(v);
    } while (consume(','));
    return consume(']');
  }
  bool tensor(Entry &e) {
    if (!consume('{'))
      return false;
    do {
      std::string key;
      if (!string(key) || !consume(':'))
        return false;
      if (key == "dtype") {
        if (!string(e.dtype))
          return false;
      } else if (key == "shape") {
        if (!integers(e.shape))
          return false;
      } else if (key == "data_offsets") {
        std::vector<int64_t> offsets;
        if (!integers(offsets) || offsets.size() != 2)
          return false;
        e.begin = offsets[0];
        e.end = offsets[1];
      } else if (!skipValue()) {
        return false;
      }
    } while (consume(','));
    return consume('}');
  }
  bool skipValue() {
    space();
    if (pos >= s.size())
      return false;
    char c = s[pos];
    if (c == '"') {
      std::string ignored;
      return string(ignored);
    }
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++pos;
      if (consume(close))
        return true;
      do {
        if (c == '{') {
          std::string key;
          if (!string(key) || !consume(':'))
            return false;
        }
        if (!skipValue())
          return false;
      } while (consume(','));
      return consume(close);
    }
    while (pos < s.size() && s[pos] != ',' && s[pos] != '}' && s[pos] != ']')
      ++pos;
    return true;
  }

  const std::string &s;
  size_t pos = 0;
};

} // namespace

Status readSafetensors(const std::string &path,
                       std::map<std::string, Tensor> &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::fail(path + ": cannot open: " + std::strerror(errno));
  unsigned char len[8];
  if (!in.read(reinterpret_cast<char *>(len), 8))
    return Status::fail(path + ": not a .safetensors file (too short)");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = headerLen << 8 | len[i];
  in.seekg(0, std::ios::end);
  uint64_t fileSize = static_cast<uint64_t>(in.tellg());
  if (headerLen > fileSize - 8)
    return Status::fail(path + ": header length " + std::to_string(headerLen) +
                        " exceeds the file");
  in.seekg(8);
  std::string header(headerLen, '\0');
  in.read(header.data(), headerLen);
  std::map<std::string, HeaderParser::Entry> entries;
  HeaderParser parser(header);
  if (!parser.parse(entries))
    return Status::fail(path + ": " + parser.error());
  uint64_t dataSize = fileSize - 8 - headerLen;
  for (const auto &[name, e] : entries) {
    TensorSpec spec;
    spec.name = name;
    spec.shape = e.shape;
    bool known = false;
    for (const SafeType &t : kSafeTypes)
      if (e.dtype == t.name) {
        spec.dtype = t.dtype;
        known = true;
      }
    if (!known)
      return Status::fail(path + ": tensor '" + name +
                          "' has unsupported dtype '" + e.dtype + "'");
    if (e.begin < 0 || e.end < e.begin || uint64_t(e.end) > dataSize ||
        uint64_t(e.end - e.begin) != spec.numBytes())
      return Status::fail(path + ": tensor '" + name +
                          "' has data offsets that do not match " +
                          spec.describe());
    Tensor t(spec);
    in.seekg(8 + headerLen + e.begin);
    if (!in.read(static_cast<char *>(t.data()), spec.numBytes()))
      return Status::fail(path + ": tensor '" + name + "' is truncated");
    out[name] = std::move(t);
  }
  return Status::ok();
}

Status writeSafetensors(const std::string &path,
                        const std::map<std::string, Tensor> &tensors) {
  std::string header = "{";
  uint64_t offset = 0;
  for (const auto &[name, tensor] : tensors) {
    const char *dtype = nullptr;
    for (const SafeType &t : kSafeTypes)
      if (t.dtype == tensor.spec().dtype)
        dtype = t.name;
    std::string shape;
    for (size_t i = 0; i < tensor.spec().shape.size(); ++i)
      shape += (i ? "," : "") + std::to_string(tensor.spec().shape[i]);
    uint64_t end = offset + tensor.spec().numBytes();
    if (header.size() > 1)
      header += ",";
    header += "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" +
              shape + "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(end) + "]}";
    offset = end;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' '); // data stays 8-aligned
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xff);
  bytes += header;
  for (const auto &[name, tensor] : tensors)
    bytes.append(static_cast<const char *>(tensor.data()),
                 tensor.spec().numBytes());
  return writeFileAtomically(path, bytes);
}

} // namespace reformer::runtime
