//===- ModelBuilder.cpp - Model config → reformer dialect -----------------===//

#include "reformer/ModelBuilder/ModelBuilder.h"

#include "reformer/Dialect/Reformer/IR/LayerFunctions.h"
#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Utils/Utils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// Emits `@forward` for one config. Parameters are declared first (their
/// names and shapes fix the function signature), then the body reads them
/// back by name.
class ForwardBuilder {
public:
  ForwardBuilder(MLIRContext *context, const ModelConfig &config,
                 bool layerFunctions)
      : b(context), loc(b.getUnknownLoc()), c(config),
        layerFunctions(layerFunctions) {
    elementType = typeNamed(c.dtype);
    streamType = typeNamed(c.paramType());
    paddedLen = c.paddedSeqLen();
  }

  func::FuncOp build(ModuleOp module);

  /// Parameter names in argument order (after the tokens).
  ArrayRef<std::string> paramNames() const { return names; }

private:
  Type typeNamed(StringRef dtype) {
    if (dtype == "bf16")
      return b.getBF16Type();
    if (dtype == "f16")
      return b.getF16Type();
    return b.getF32Type();
  }
  /// An activation inside a residual function.
  RankedTensorType tensor(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, elementType);
  }
  /// A parameter, an embedding or the residual stream.
  RankedTensorType streamTensor(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, streamType);
  }
  void declare(const std::string &name, ArrayRef<int64_t> shape) {
    names.push_back(name);
    types.push_back(streamTensor(shape));
  }
  /// A parameter as the residual functions and the head compute with it:
  /// in mixed precision, a matmul weight's or bias's bf16 copy.
  Value param(StringRef name) {
    if (Value copy = copies.lookup(name))
      return copy;
    return storedParam(name);
  }
  /// A parameter as stored (embeddings, layer norms).
  Value storedParam(StringRef name) {
    Value v = stored.lookup(name);
    assert(v && "parameter used but not declared");
    return v;
  }
  /// Converts between the residual stream's and the activations' types
  /// (mixed precision only).
  Value toStream(Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    if (type.getElementType() == streamType)
      return x;
    return arith::ExtFOp::create(b, loc, type.clone(streamType), x);
  }
  Value toActivations(Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    if (type.getElementType() == elementType)
      return x;
    return arith::TruncFOp::create(b, loc, type.clone(elementType), x);
  }
  std::string layerName(int64_t layer, StringRef suffix) {
    return llvm::formatv("layers.{0}.{1}", layer, suffix).str();
  }

  /// One of a layer's parameters: its name after `layers.N.`, its shape.
  struct LayerParam {
    std::string suffix;
    SmallVector<int64_t> shape;
  };
  SmallVector<LayerParam> layerParams(int64_t layer) const;
  void declareParams();
  Value layerNorm(Value x, StringRef prefix);
  /// `resultElement`: the activations' type by default.
  Value dense(Value x, StringRef weight, int64_t outDim,
              Type resultElement = {});
  Value attention(Value x, int64_t layer);
  Value feedForward(Value x, int64_t layer);
  /// `reformer.dropout` of a residual function's output (salt: its site).
  Value dropout(Value x, int64_t salt);
  void residualRegion(Region &region, Type type,
                      llvm::function_ref<Value(Value)> body);
  /// `layer`'s `reformer.reversible` on (x1, x2); returns (y1, y2).
  std::pair<Value, Value> reversibleBlock(Value x1, Value x2, int64_t layer);
  /// Layers of one kind share a function (the kind is its name).
  std::string layerKind(int64_t layer) const;
  /// Calls the function of `layer`'s kind, building it on first use.
  std::pair<Value, Value> callLayer(ModuleOp module, Value x1, Value x2,
                                    int64_t layer);

  OpBuilder b;
  Location loc;
  const ModelConfig &c;
  Type elementType, streamType;
  int64_t paddedLen;
  std::vector<std::string> names;
  SmallVector<Type> types;
  llvm::StringMap<Value> stored, copies;
  Value mask; // Padding mask, when the sequence is padded.
  bool layerFunctions;
  llvm::StringMap<func::FuncOp> layerFunctionOf;
  /// The hash seed, a 0-D i64 argument of the layer's function.
  Value hashSeed;
};

} // namespace

SmallVector<ForwardBuilder::LayerParam>
ForwardBuilder::layerParams(int64_t layer) const {
  int64_t m = c.dModel, width = c.nHeads * c.headDim();
  SmallVector<LayerParam> params = {{"attention.layer_norm.weight", {m}},
                                    {"attention.layer_norm.bias", {m}}};
  if (c.attentionOf(layer) == AttentionKind::Lsh) {
    params.push_back({"attention.self.query_key.weight", {m, width}});
    if (c.rotationsAsArguments) {
      int64_t rotWidth = 0;
      for (int64_t f : c.nBuckets)
        rotWidth += f / 2;
      params.push_back({"attention.self.rotations",
                        {c.nHeads, c.headDim(), c.nHashes, rotWidth}});
    }
  } else {
    params.push_back({"attention.self.query.weight", {m, width}});
    params.push_back({"attention.self.key.weight", {m, width}});
  }
  params.push_back({"attention.self.value.weight", {m, width}});
  params.push_back({"attention.output.dense.weight", {width, m}});
  params.push_back({"feed_forward.layer_norm.weight", {m}});
  params.push_back({"feed_forward.layer_norm.bias", {m}});
  params.push_back({"feed_forward.dense.weight", {m, c.dFf}});
  params.push_back({"feed_forward.dense.bias", {c.dFf}});
  params.push_back({"feed_forward.output.dense.weight", {c.dFf, m}});
  params.push_back({"feed_forward.output.dense.bias", {m}});
  return params;
}

void ForwardBuilder::declareParams() {
  int64_t m = c.dModel;
  declare("embeddings.word_embeddings.weight", {c.vocabSize, m});
  for (size_t i = 0; i < c.axialPosShape.size(); ++i)
    declare(llvm::formatv("embeddings.position_embeddings.weights.{0}", i),
            {c.axialPosShape[i], c.axialPosDims[i]});
  for (int64_t layer = 0; layer < c.nLayers; ++layer)
    for (const LayerParam &p : layerParams(layer))
      declare(layerName(layer, p.suffix), p.shape);
  declare("layer_norm.weight", {2 * m});
  declare("layer_norm.bias", {2 * m});
  declare("lm_head.weight", {2 * m, c.vocabSize});
  declare("lm_head.bias", {c.vocabSize});
}

Value ForwardBuilder::layerNorm(Value x, StringRef prefix) {
  // In mixed precision, from the f32 stream with f32 weights (normalizing
  // rounded inputs would double the rounding error), rounded once on store.
  auto type = cast<RankedTensorType>(x.getType()).clone(elementType);
  return LayerNormOp::create(
      b, loc, type, x, storedParam((prefix + ".weight").str()),
      storedParam((prefix + ".bias").str()), b.getF64FloatAttr(c.layerNormEps));
}

Value ForwardBuilder::dense(Value x, StringRef weight, int64_t outDim,
                            Type resultElement) {
  SmallVector<int64_t> shape(cast<ShapedType>(x.getType()).getShape());
  shape.back() = outDim;
  auto type =
      RankedTensorType::get(shape, resultElement ? resultElement : elementType);
  return DenseOp::create(b, loc, type, x, param(weight), Value());
}

Value ForwardBuilder::attention(Value x, int64_t layer) {
  int64_t width = c.nHeads * c.headDim();
  auto headsType = tensor({c.batchSize, c.nHeads, paddedLen, c.headDim()});
  auto heads = [&](StringRef weight) -> Value {
    return SplitHeadsOp::create(b, loc, headsType,
                                dense(x, layerName(layer, weight), width));
  };
  Value v = heads("attention.self.value.weight");
  Value out;
  if (c.attentionOf(layer) == AttentionKind::Lsh) {
    Value qk = heads("attention.self.query_key.weight");
    Value rotations;
    if (c.rotationsAsArguments) {
      rotations = param(layerName(layer, "attention.self.rotations"));
    } else if (hashSeed) {
      // Drawn in the layer's function from its seed argument; f32 whatever
      // the activations' type, as the hash computes in f32.
      int64_t rotWidth = 0;
      for (int64_t f : c.nBuckets)
        rotWidth += f / 2;
      auto rotType = RankedTensorType::get(
          {c.nHeads, c.headDim(), c.nHashes, rotWidth}, b.getF32Type());
      rotations = LshRotationsOp::create(b, loc, rotType, hashSeed,
                                         /*seed=*/IntegerAttr());
    }
    IntegerAttr seed =
        rotations ? IntegerAttr() : b.getI64IntegerAttr(c.hashSeed + layer);
    out = LshAttentionOp::create(
              b, loc, headsType, /*training_results=*/TypeRange(), qk, v,
              rotations, mask, c.nHashes, c.nBuckets, c.lshChunkLen,
              c.lshChunksBefore, c.lshChunksAfter, c.causal,
              c.duplicateCorrection, seed)
              .getOut();
  } else {
    Value q = heads("attention.self.query.weight");
    Value k = heads("attention.self.key.weight");
    out = LocalAttentionOp::create(b, loc, headsType, q, k, v, mask,
                                   c.localChunkLen, c.localChunksBefore,
                                   c.localChunksAfter, c.causal);
  }
  Value merged = MergeHeadsOp::create(
      b, loc, tensor({c.batchSize, paddedLen, width}), out);
  // Its f32 accumulators go straight to the residual stream's type.
  return dense(merged, layerName(layer, "attention.output.dense.weight"),
               c.dModel, streamType);
}

Value ForwardBuilder::feedForward(Value x, int64_t layer) {
  auto activation = symbolizeActivation(c.activation);
  assert(activation && "config validation admits known activations only");
  return ChunkedFfnOp::create(
      b, loc, x.getType(), x,
      param(layerName(layer, "feed_forward.dense.weight")),
      param(layerName(layer, "feed_forward.dense.bias")),
      param(layerName(layer, "feed_forward.output.dense.weight")),
      param(layerName(layer, "feed_forward.output.dense.bias")), c.ffnChunk,
      *activation);
}

Value ForwardBuilder::dropout(Value x, int64_t salt) {
  if (c.dropout == 0.0)
    return x;
  return DropoutOp::create(b, loc, x.getType(), x, /*seed=*/Value(),
                           b.getF64FloatAttr(c.dropout),
                           b.getI64IntegerAttr(salt));
}

void ForwardBuilder::residualRegion(Region &region, Type type,
                                    llvm::function_ref<Value(Value)> body) {
  OpBuilder::InsertionGuard guard(b);
  Block *block = b.createBlock(&region, {}, {type}, {loc});
  Value result = body(block->getArgument(0));
  YieldOp::create(b, loc, result);
}

std::pair<Value, Value> ForwardBuilder::reversibleBlock(Value x1, Value x2,
                                                        int64_t layer) {
  Type type = x1.getType();
  auto block = ReversibleOp::create(b, loc, type, type, x1, x2);
  residualRegion(block.getF(), type, [&](Value in) {
    Value normed = layerNorm(in, layerName(layer, "attention.layer_norm"));
    return dropout(attention(normed, layer), 2 * layer);
  });
  residualRegion(block.getG(), type, [&](Value in) {
    Value normed = layerNorm(in, layerName(layer, "feed_forward.layer_norm"));
    // The FFN stores bf16, widened for the stream. Writing f32 directly
    // (as the attention's projection does) made the whole-model gradient
    // check worse, for a reason not yet found.
    return dropout(toStream(feedForward(normed, layer)), 2 * layer + 1);
  });
  return {block.getY1(), block.getY2()};
}

std::string ForwardBuilder::layerKind(int64_t layer) const {
  std::string kind =
      c.attentionOf(layer) == AttentionKind::Lsh ? "lsh_layer" : "local_layer";
  // Dropout salts its masks per layer (an attribute), so such layers differ.
  if (c.dropout != 0.0)
    kind += "_" + std::to_string(layer);
  return kind;
}

std::pair<Value, Value> ForwardBuilder::callLayer(ModuleOp module, Value x1,
                                                  Value x2, int64_t layer) {
  // What the layer reads from outside its block, in argument order.
  SmallVector<Value> operands = {x1, x2};
  SmallVector<std::string> roles = {"x1", "x2"};
  SmallVector<std::string> paramNames;
  for (const LayerParam &p : layerParams(layer)) {
    paramNames.push_back(layerName(layer, p.suffix));
    operands.push_back(param(paramNames.back()));
    roles.push_back(p.suffix);
  }
  if (mask) {
    operands.push_back(mask);
    roles.push_back("mask");
  }
  bool seeded =
      c.attentionOf(layer) == AttentionKind::Lsh && !c.rotationsAsArguments;
  if (seeded) {
    // The seed is an argument, so layers that differ only in their seed
    // share one function.
    auto seedType = RankedTensorType::get({}, b.getI64Type());
    operands.push_back(arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(seedType,
                               b.getI64IntegerAttr(c.hashSeed + layer))));
    roles.push_back("hash_seed");
  }

  func::FuncOp &fn = layerFunctionOf[layerKind(layer)];
  if (!fn) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(module.getBody());
    Type type = x1.getType();
    fn = func::FuncOp::create(
        b, loc, layerKind(layer),
        b.getFunctionType(ValueRange(operands).getTypes(), {type, type}));
    fn.setPrivate();
    fn->setAttr(kLayerAttrName, b.getUnitAttr());
    for (auto [i, role] : llvm::enumerate(roles))
      fn.setArgAttr(i, "reformer.layer_input", b.getStringAttr(role));
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    // The body reads the layer's parameters, mask and hash seed through
    // the function's arguments: rebind them while it is built.
    llvm::StringMap<Value> savedStored = stored, savedCopies = copies;
    Value savedMask = mask;
    for (auto [i, name] : llvm::enumerate(paramNames)) {
      stored[name] = entry->getArgument(2 + i);
      copies.erase(name);
    }
    unsigned next = 2 + paramNames.size();
    if (mask)
      mask = entry->getArgument(next++);
    if (seeded)
      hashSeed = entry->getArgument(next++);
    auto [y1, y2] =
        reversibleBlock(entry->getArgument(0), entry->getArgument(1), layer);
    func::ReturnOp::create(b, loc, ValueRange{y1, y2});
    stored = std::move(savedStored);
    copies = std::move(savedCopies);
    mask = savedMask;
    hashSeed = Value();
  }
  auto call = func::CallOp::create(b, loc, fn, operands);
  return {call.getResult(0), call.getResult(1)};
}

func::FuncOp ForwardBuilder::build(ModuleOp module) {
  declareParams();
  auto tokensType =
      RankedTensorType::get({c.batchSize, c.seqLen}, b.getI32Type());
  SmallVector<Type> argTypes = {tokensType};
  argTypes.append(types);
  auto logitsType = streamTensor({c.batchSize, c.seqLen, c.vocabSize});

  b.setInsertionPointToEnd(module.getBody());
  auto fn = func::FuncOp::create(b, loc, "forward",
                                 b.getFunctionType(argTypes, {logitsType}));
  fn.setArgAttr(0, "reformer.input", b.getStringAttr("tokens"));
  fn.setResultAttr(0, "reformer.output", b.getStringAttr("logits"));
  // All at once: one argument at a time rebuilds every argument's list.
  SmallVector<DictionaryAttr> argAttrs = {fn.getArgAttrDict(0)};
  for (const std::string &name : names)
    argAttrs.push_back(b.getDictionaryAttr(
        b.getNamedAttr("reformer.param", b.getStringAttr(name))));
  fn.setAllArgAttrs(argAttrs);
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  // Mixed precision converts each matmul weight and bias once per call, up
  // front: every use, the backward's included, reads the bf16 copy. The
  // embeddings and layer norms use the stored f32 values.
  for (auto [i, name] : llvm::enumerate(names)) {
    Value arg = entry->getArgument(i + 1);
    stored[name] = arg;
    StringRef n(name);
    if (c.mixedPrecision() && !n.starts_with("embeddings.") &&
        !n.contains("layer_norm"))
      copies[name] = toActivations(arg);
  }

  int64_t m = c.dModel;
  Value x = EmbeddingOp::create(
      b, loc, streamTensor({c.batchSize, c.seqLen, m}), entry->getArgument(0),
      storedParam("embeddings.word_embeddings.weight"));
  if (!c.axialPosShape.empty()) {
    SmallVector<Value> weights;
    for (size_t i = 0; i < c.axialPosShape.size(); ++i)
      weights.push_back(storedParam(
          llvm::formatv("embeddings.position_embeddings.weights.{0}", i)
              .str()));
    x = AxialPosEmbeddingOp::create(b, loc, x.getType(), x, weights);
  }
  if (paddedLen != c.seqLen) {
    // Pad to a multiple of every chunk length and mask the padding out of
    // every attention; the logits are sliced back to seq_len.
    Value zero = arith::ConstantOp::create(b, loc, b.getZeroAttr(streamType));
    x = tensor::createPadHighOp(streamTensor({c.batchSize, paddedLen, m}), x,
                                zero,
                                /*nofold=*/false, loc, b);
    mask = LengthMaskOp::create(
        b, loc, RankedTensorType::get({c.batchSize, paddedLen}, b.getI1Type()),
        c.seqLen);
  }

  Value x1 = x, x2 = x;
  for (int64_t layer = 0; layer < c.nLayers; ++layer)
    std::tie(x1, x2) = layerFunctions ? callLayer(module, x1, x2, layer)
                                      : reversibleBlock(x1, x2, layer);

  Value h = tensor::ConcatOp::create(b, loc, /*dim=*/2, ValueRange{x1, x2});
  h = layerNorm(h, "layer_norm");
  if (paddedLen != c.seqLen) {
    SmallVector<OpFoldResult> offsets(3, b.getIndexAttr(0));
    SmallVector<OpFoldResult> sizes = {b.getIndexAttr(c.batchSize),
                                       b.getIndexAttr(c.seqLen),
                                       b.getIndexAttr(2 * m)};
    SmallVector<OpFoldResult> strides(3, b.getIndexAttr(1));
    h = tensor::ExtractSliceOp::create(b, loc,
                                       tensor({c.batchSize, c.seqLen, 2 * m}),
                                       h, offsets, sizes, strides);
  }
  // f32 logits in mixed precision, straight from the f32 accumulators.
  Value logits = DenseOp::create(b, loc, logitsType, h, param("lm_head.weight"),
                                 param("lm_head.bias"));
  func::ReturnOp::create(b, loc, logits);
  return fn;
}

/// `@loss(tokens, targets, params…)`: cross-entropy of `@forward`'s logits.
static void buildLoss(OpBuilder &b, ModuleOp module, func::FuncOp forward) {
  Location loc = forward.getLoc();
  FunctionType fwdType = forward.getFunctionType();
  Type tokensType = fwdType.getInput(0);
  SmallVector<Type> argTypes = {tokensType, tokensType};
  argTypes.append(fwdType.getInputs().begin() + 1, fwdType.getInputs().end());
  auto lossType = RankedTensorType::get({}, b.getF32Type());

  b.setInsertionPointToEnd(module.getBody());
  auto fn = func::FuncOp::create(b, loc, "loss",
                                 b.getFunctionType(argTypes, {lossType}));
  fn.setResultAttr(0, "reformer.output", b.getStringAttr("loss"));
  SmallVector<DictionaryAttr> argAttrs = {
      b.getDictionaryAttr(
          b.getNamedAttr("reformer.input", b.getStringAttr("tokens"))),
      b.getDictionaryAttr(
          b.getNamedAttr("reformer.input", b.getStringAttr("targets")))};
  for (unsigned i = 1; i < fwdType.getNumInputs(); ++i)
    argAttrs.push_back(forward.getArgAttrDict(i));
  fn.setAllArgAttrs(argAttrs);
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  SmallVector<Value> callArgs = {entry->getArgument(0)};
  callArgs.append(entry->getArguments().begin() + 2,
                  entry->getArguments().end());
  Value logits = func::CallOp::create(b, loc, forward, callArgs).getResult(0);
  Value loss = SoftmaxCrossEntropyOp::create(b, loc, lossType, logits,
                                             entry->getArgument(1), Value());
  func::ReturnOp::create(b, loc, loss);
}

FailureOr<OwningOpRef<ModuleOp>>
mlir::reformer::buildModel(MLIRContext *context, const ModelConfig &config,
                           const BuildOptions &options) {
  context->loadDialect<ReformerDialect, func::FuncDialect,
                       tensor::TensorDialect, arith::ArithDialect>();
  OpBuilder b(context);
  OwningOpRef<ModuleOp> module =
      ModuleOp::create(b.getUnknownLoc(), StringRef(config.name));
  ForwardBuilder forwardBuilder(context, config, options.layerFunctions);
  func::FuncOp forward = forwardBuilder.build(*module);
  if (options.emitLoss)
    buildLoss(b, *module, forward);
  if (failed(verify(*module)))
    return failure();
  return module;
}
