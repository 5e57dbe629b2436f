//===- ModelConfigTest.cpp - Reading and checking model configs -----------===//

#include "reformer/ModelBuilder/ModelConfig.h"

#include "gtest/gtest.h"

using namespace mlir::reformer;

namespace {

ModelConfig parseOk(llvm::StringRef json) {
  llvm::Expected<ModelConfig> config = parseModelConfig(json, "test.json");
  if (!config) {
    ADD_FAILURE() << llvm::toString(config.takeError());
    return {};
  }
  return *config;
}

std::string parseError(llvm::StringRef json) {
  llvm::Expected<ModelConfig> config = parseModelConfig(json, "test.json");
  if (config) {
    ADD_FAILURE() << "config was accepted: " << json.str();
    return "";
  }
  return llvm::toString(config.takeError());
}

TEST(ModelConfig, EmptyObjectGivesTheDefaults) {
  ModelConfig parsed = parseOk("{}");
  ModelConfig defaults;
  EXPECT_EQ(parsed.dModel, defaults.dModel);
  EXPECT_EQ(parsed.nBuckets, defaults.nBuckets);
  EXPECT_EQ(parsed.causal, defaults.causal);
  EXPECT_EQ(parsed.headDim(), defaults.dModel / defaults.nHeads);
}

TEST(ModelConfig, MixedPrecisionKeepsF32Parameters) {
  ModelConfig c = parseOk(R"({"dtype": "bf16", "param_dtype": "f32"})");
  EXPECT_EQ(c.dtype, "bf16");
  EXPECT_EQ(c.paramType(), "f32");
  EXPECT_TRUE(c.mixedPrecision());
}

TEST(ModelConfig, ReadsEveryKindOfField) {
  ModelConfig c = parseOk(R"({
    "name": "m", "vocab_size": 10, "d_model": 48, "n_heads": 3, "d_head": 8,
    "n_layers": 5, "attn_layers": ["local", "lsh"], "n_buckets": [4, 6],
    "causal": false, "rotations": "argument", "layer_norm_eps": 1e-5,
    "dtype": "bf16", "seq_len": 96, "lsh_chunk_len": 32
  })");
  EXPECT_EQ(c.name, "m");
  EXPECT_EQ(c.vocabSize, 10);
  EXPECT_EQ(c.headDim(), 8);
  EXPECT_EQ(c.nBuckets, (std::vector<int64_t>{4, 6}));
  EXPECT_FALSE(c.causal);
  EXPECT_TRUE(c.rotationsAsArguments);
  EXPECT_DOUBLE_EQ(c.layerNormEps, 1e-5);
  EXPECT_EQ(c.dtype, "bf16");
  // Parameters follow dtype unless param_dtype says otherwise.
  EXPECT_EQ(c.paramType(), "bf16");
  EXPECT_FALSE(c.mixedPrecision());
  // The attention pattern repeats over the layers.
  EXPECT_EQ(c.attentionOf(0), AttentionKind::Local);
  EXPECT_EQ(c.attentionOf(3), AttentionKind::Lsh);
  EXPECT_EQ(c.attentionOf(4), AttentionKind::Local);
}

TEST(ModelConfig, ScalarBucketsAreOneFactor) {
  EXPECT_EQ(parseOk(R"({"n_buckets": 64})").nBuckets,
            (std::vector<int64_t>{64}));
}

TEST(ModelConfig, PadsToEveryChunkLengthInUse) {
  ModelConfig c;
  c.seqLen = 100;
  c.lshChunkLen = 16;
  c.localChunkLen = 24;
  c.attnLayers = {AttentionKind::Lsh};
  EXPECT_EQ(c.paddedSeqLen(), 112);
  c.attnLayers = {AttentionKind::Lsh, AttentionKind::Local};
  EXPECT_EQ(c.paddedSeqLen(), 144); // lcm(16, 24) = 48
  c.seqLen = 96;
  EXPECT_EQ(c.paddedSeqLen(), 96);
  // A local chunk length no layer uses does not pad.
  c.attnLayers = {AttentionKind::Lsh};
  c.nLayers = 1;
  c.seqLen = 64;
  EXPECT_EQ(c.paddedSeqLen(), 64);
}

TEST(ModelConfig, ErrorsNameTheFileTheFieldAndTheValue) {
  std::string e = parseError(R"({"n_hashes": -2})");
  EXPECT_NE(e.find("test.json"), std::string::npos) << e;
  EXPECT_NE(e.find("'n_hashes'"), std::string::npos) << e;
  EXPECT_NE(e.find("got -2"), std::string::npos) << e;
}

TEST(ModelConfig, RejectsInconsistentFields) {
  EXPECT_NE(parseError(R"({"d_model": 30, "n_heads": 4})").find("d_head"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"n_buckets": [4, 5]})").find("even"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"causal": 1})").find("true or false"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"seq_len": 32, "lsh_chunk_len": 32,
                           "n_hashes": 1, "lsh_chunks_after": 1})")
                .find("window"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"d_model": 4, "n_heads": 1, "seq_len": 10,
                           "axial_pos_shape": [3, 3],
                           "axial_pos_dims": [2, 2]})")
                .find("covers 9 positions"),
            std::string::npos);
  EXPECT_NE(parseError(R"({"dModel": 4})").find("unknown field 'dModel'"),
            std::string::npos);
}

TEST(ModelConfig, EveryPresetIsValid) {
  std::vector<std::string> names = listModelPresets();
  ASSERT_FALSE(names.empty());
  for (const std::string &name : names) {
    llvm::Expected<ModelConfig> preset = getModelPreset(name);
    ASSERT_TRUE(static_cast<bool>(preset))
        << llvm::toString(preset.takeError());
    EXPECT_EQ(preset->name, name);
    llvm::Error e = validateModelConfig(*preset, name);
    EXPECT_FALSE(static_cast<bool>(e)) << llvm::toString(std::move(e));
  }
  llvm::Expected<ModelConfig> unknown = getModelPreset("nope");
  ASSERT_FALSE(static_cast<bool>(unknown));
  EXPECT_NE(llvm::toString(unknown.takeError()).find("known: tiny"),
            std::string::npos);
}

} // namespace
