//===- ModelConfig.cpp - Reading and checking model configs ---------------===//

#include "reformer/ModelBuilder/ModelConfig.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

#include <numeric>

using namespace mlir::reformer;
using llvm::ArrayRef;
using llvm::Error;
using llvm::StringRef;

static Error configError(StringRef source, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 (source + ": " + message).str());
}

static std::string describe(const llvm::json::Value &value) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << value;
  return s;
}

namespace {

/// Reads the fields of one JSON object, remembering the first error.
class FieldReader {
public:
  FieldReader(const llvm::json::Object &object, StringRef source)
      : object(object), source(source) {}

  void integer(StringRef key, int64_t &out, int64_t min) {
    const llvm::json::Value *v = take(key);
    if (!v)
      return;
    std::optional<int64_t> i = v->getAsInteger();
    if (!i || *i < min)
      return fail(key, llvm::formatv("an integer >= {0}", min).str(), *v);
    out = *i;
  }

  void boolean(StringRef key, bool &out) {
    const llvm::json::Value *v = take(key);
    if (!v)
      return;
    std::optional<bool> b = v->getAsBoolean();
    if (!b)
      return fail(key, "true or false", *v);
    out = *b;
  }

  void number(StringRef key, double &out) {
    const llvm::json::Value *v = take(key);
    if (!v)
      return;
    std::optional<double> d = v->getAsNumber();
    if (!d || *d <= 0)
      return fail(key, "a positive number", *v);
    out = *d;
  }

  void oneOf(StringRef key, std::string &out, ArrayRef<StringRef> choices) {
    const llvm::json::Value *v = take(key);
    if (!v)
      return;
    std::optional<StringRef> s = v->getAsString();
    if (!s || !llvm::is_contained(choices, *s))
      return fail(key, "one of " + quoted(choices), *v);
    out = s->str();
  }

  void string(StringRef key, std::string &out) {
    const llvm::json::Value *v = take(key);
    if (!v)
      return;
    std::optional<StringRef> s = v->getAsString();
    if (!s)
      return fail(key, "a string", *v);
    out = s->str();
  }

  /// An integer or a list of integers, each at least `min`.
  void integers(StringRef key, std::vector<int64_t> &out, int64_t min,
                bool allowScalar) {
    const llvm::json::Value *v = take(key);
    if (!v)
      return;
    std::string expected =
        llvm::formatv("{0}a non-empty list of integers >= {1}",
                      allowScalar ? "an integer or " : "", min)
            .str();
    std::vector<int64_t> values;
    if (std::optional<int64_t> i = v->getAsInteger()) {
      if (!allowScalar)
        return fail(key, expected, *v);
      values.push_back(*i);
    } else if (const llvm::json::Array *array = v->getAsArray()) {
      for (const llvm::json::Value &e : *array) {
        std::optional<int64_t> i = e.getAsInteger();
        if (!i)
          return fail(key, expected, *v);
        values.push_back(*i);
      }
    } else {
      return fail(key, expected, *v);
    }
    if (values.empty() ||
        llvm::any_of(values, [&](int64_t x) { return x < min; }))
      return fail(key, expected, *v);
    out = std::move(values);
  }

  void strings(StringRef key, std::vector<std::string> &out,
               ArrayRef<StringRef> choices) {
    const llvm::json::Value *v = take(key);
    if (!v)
      return;
    std::string expected = "a non-empty list of " + quoted(choices);
    const llvm::json::Array *array = v->getAsArray();
    if (!array || array->empty())
      return fail(key, expected, *v);
    out.clear();
    for (const llvm::json::Value &e : *array) {
      std::optional<StringRef> s = e.getAsString();
      if (!s || !llvm::is_contained(choices, *s))
        return fail(key, expected, *v);
      out.push_back(s->str());
    }
  }

  /// Reports the first field nobody read: a misspelt field must not be
  /// silently ignored.
  Error finish() {
    if (error)
      return std::move(error);
    for (const auto &kv : object)
      if (!seen.contains(kv.first.str()))
        return configError(source, "unknown field '" + kv.first.str() + "'");
    return Error::success();
  }

private:
  const llvm::json::Value *take(StringRef key) {
    seen.insert(key);
    if (error)
      return nullptr;
    return object.get(key);
  }

  void fail(StringRef key, const std::string &expected,
            const llvm::json::Value &got) {
    error = configError(source, "field '" + key + "': expected " + expected +
                                    ", got " + describe(got));
  }

  static std::string quoted(ArrayRef<StringRef> choices) {
    std::string s;
    llvm::raw_string_ostream os(s);
    llvm::interleave(
        choices, os, [&](StringRef c) { os << '"' << c << '"'; }, ", ");
    return s;
  }

  const llvm::json::Object &object;
  StringRef source;
  llvm::StringSet<> seen;
  Error error = Error::success();
};

} // namespace

bool ModelConfig::usesAttention(AttentionKind kind) const {
  for (int64_t layer = 0; layer < nLayers; ++layer)
    if (attentionOf(layer) == kind)
      return true;
  return false;
}

int64_t ModelConfig::paddedSeqLen() const {
  int64_t multiple = 1;
  if (usesAttention(AttentionKind::Lsh))
    multiple = std::lcm(multiple, lshChunkLen);
  if (usesAttention(AttentionKind::Local))
    multiple = std::lcm(multiple, localChunkLen);
  return (seqLen + multiple - 1) / multiple * multiple;
}

llvm::Expected<ModelConfig>
mlir::reformer::parseModelConfig(StringRef json, StringRef sourceName) {
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(json);
  if (!parsed)
    return configError(sourceName,
                       "invalid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  if (!object)
    return configError(sourceName,
                       "expected a JSON object, got " + describe(*parsed));

  ModelConfig c;
  FieldReader r(*object, sourceName);
  std::vector<std::string> attnLayers;
  r.string("name", c.name);
  r.integer("vocab_size", c.vocabSize, 1);
  r.integer("d_model", c.dModel, 1);
  r.integer("n_heads", c.nHeads, 1);
  r.integer("d_head", c.dHead, 1);
  r.integer("n_layers", c.nLayers, 1);
  r.integer("d_ff", c.dFf, 1);
  r.integer("seq_len", c.seqLen, 1);
  r.integer("batch_size", c.batchSize, 1);
  r.strings("attn_layers", attnLayers, {"lsh", "local"});
  r.integer("n_hashes", c.nHashes, 1);
  r.integers("n_buckets", c.nBuckets, 2, /*allowScalar=*/true);
  r.integer("lsh_chunk_len", c.lshChunkLen, 1);
  r.integer("lsh_chunks_before", c.lshChunksBefore, 0);
  r.integer("lsh_chunks_after", c.lshChunksAfter, 0);
  r.integer("local_chunk_len", c.localChunkLen, 1);
  r.integer("local_chunks_before", c.localChunksBefore, 0);
  r.integer("local_chunks_after", c.localChunksAfter, 0);
  r.boolean("causal", c.causal);
  r.boolean("duplicate_correction", c.duplicateCorrection);
  std::string rotations = "seed";
  r.oneOf("rotations", rotations, {"seed", "argument"});
  r.integer("hash_seed", c.hashSeed, 0);
  r.integer("ffn_chunk", c.ffnChunk, 1);
  r.oneOf("activation", c.activation, {"relu", "gelu", "gelu_tanh", "silu"});
  r.integers("axial_pos_shape", c.axialPosShape, 1, /*allowScalar=*/false);
  r.integers("axial_pos_dims", c.axialPosDims, 1, /*allowScalar=*/false);
  r.number("layer_norm_eps", c.layerNormEps);
  r.number("dropout", c.dropout);
  r.oneOf("dtype", c.dtype, {"f32", "bf16", "f16"});
  r.oneOf("param_dtype", c.paramDtype, {"f32", "bf16", "f16"});
  if (Error e = r.finish())
    return std::move(e);

  c.rotationsAsArguments = rotations == "argument";
  if (!attnLayers.empty()) {
    c.attnLayers.clear();
    for (const std::string &kind : attnLayers)
      c.attnLayers.push_back(kind == "lsh" ? AttentionKind::Lsh
                                           : AttentionKind::Local);
  }
  if (Error e = validateModelConfig(c, sourceName))
    return std::move(e);
  return c;
}

Error mlir::reformer::validateModelConfig(const ModelConfig &c,
                                          StringRef source) {
  if (!c.dHead && c.dModel % c.nHeads != 0)
    return configError(source,
                       llvm::formatv("d_model ({0}) is not divisible by "
                                     "n_heads ({1}); set d_head explicitly",
                                     c.dModel, c.nHeads));
  for (int64_t f : c.nBuckets)
    if (f % 2 != 0)
      return configError(
          source, llvm::formatv("field 'n_buckets': every factor must be "
                                "even, got {0}",
                                f));
  if (!(c.dropout >= 0.0 && c.dropout < 1.0))
    return configError(source,
                       llvm::formatv("field 'dropout' must lie in [0, 1), "
                                     "got {0}",
                                     c.dropout));
  if (c.mixedPrecision() && c.paramType() != "f32")
    return configError(
        source, llvm::formatv("field 'param_dtype' must be 'f32' or equal to "
                              "'dtype' ({0}), got '{1}'",
                              c.dtype, c.paramType()));
  // Mixed precision's kernels read bf16; f16 activations would also need
  // loss scaling for their range.
  if (c.mixedPrecision() && c.dtype != "bf16")
    return configError(source,
                       llvm::formatv("mixed precision ('param_dtype': 'f32') "
                                     "needs 'dtype': 'bf16', got '{0}'",
                                     c.dtype));
  int64_t padded = c.paddedSeqLen();
  if (c.usesAttention(AttentionKind::Lsh)) {
    int64_t window = c.lshChunksBefore + 1 + c.lshChunksAfter;
    int64_t chunks = c.nHashes * padded / c.lshChunkLen;
    if (window > chunks)
      return configError(
          source,
          llvm::formatv("the LSH attention window of {0} chunks "
                        "(lsh_chunks_before + 1 + lsh_chunks_after) exceeds "
                        "the {1} chunks of the sorted sequence (n_hashes * "
                        "{2} / lsh_chunk_len)",
                        window, chunks, padded));
  }
  if (c.axialPosShape.empty() != c.axialPosDims.empty() ||
      c.axialPosShape.size() != c.axialPosDims.size())
    return configError(source, "fields 'axial_pos_shape' and "
                               "'axial_pos_dims' must have the same length");
  if (!c.axialPosShape.empty()) {
    int64_t positions = 1, width = 0;
    for (int64_t n : c.axialPosShape)
      positions *= n;
    for (int64_t d : c.axialPosDims)
      width += d;
    if (width != c.dModel)
      return configError(source,
                         llvm::formatv("field 'axial_pos_dims' sums to {0}, "
                                       "expected d_model = {1}",
                                       width, c.dModel));
    if (positions < c.seqLen)
      return configError(source,
                         llvm::formatv("field 'axial_pos_shape' covers {0} "
                                       "positions, fewer than seq_len = {1}",
                                       positions, c.seqLen));
  }
  return Error::success();
}
