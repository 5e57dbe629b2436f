//===- ReformerOps.cpp - Verifiers of the reformer ops --------------------===//

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "ShapeChecks.h"

#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::detail;

#define GET_OP_CLASSES
#include "reformer/Dialect/Reformer/IR/ReformerOps.cpp.inc"

static ArrayRef<int64_t> shapeOf(Value v) {
  return cast<ShapedType>(v.getType()).getShape();
}

static Type elementTypeOf(Value v) {
  return cast<ShapedType>(v.getType()).getElementType();
}

/// Checks that `value` has the shape and element type of `reference`.
static LogicalResult verifyLike(Operation *op, StringRef name, Value value,
                                Value reference) {
  if (failed(verifyShape(op, name, value.getType(), shapeOf(reference))))
    return failure();
  return verifyElementType(op, name, value.getType(), elementTypeOf(reference));
}

/// Number of positions of the sorted sequence: n_hashes · L (dynamic if L is).
static int64_t sortedLength(int64_t numHashes, int64_t seqLen) {
  return isDynamic(seqLen) ? kAnyDim : numHashes * seqLen;
}

//===----------------------------------------------------------------------===//
// LshAttentionOp
//===----------------------------------------------------------------------===//

/// Total buckets of factorized hashing: the product of the factors.
static int64_t productOf(ArrayRef<int64_t> factors) {
  int64_t total = 1;
  for (int64_t f : factors)
    total *= f;
  return total;
}

int64_t LshAttentionOp::getNumBucketsTotal() {
  return productOf(getNBuckets());
}

int64_t LshAttentionOp::getRotationWidth() {
  int64_t sum = 0;
  for (int64_t f : getNBuckets())
    sum += f;
  return sum / 2;
}

LogicalResult LshAttentionOp::verify() {
  Operation *op = getOperation();
  int64_t numHashes = getNHashes();
  if (numHashes < 1)
    return emitOpError() << "expects n_hashes to be at least 1, got "
                         << numHashes;
  if (failed(verifyBucketFactors(op, getNBuckets())))
    return failure();

  ArrayRef<int64_t> qk = shapeOf(getQk());
  int64_t b = qk[0], h = qk[1], l = qk[2], d = qk[3];
  if (failed(verifyLike(op, "v", getV(), getQk())))
    return failure();
  if (failed(verifyChunking(op, l, sortedLength(numHashes, l), getChunkLen(),
                            getChunksBefore(), getChunksAfter())))
    return failure();

  if (getRotations() && getSeed())
    return emitOpError(
        "expects either a rotations operand or a seed attribute, not both");
  if (!getRotations() && !getSeed())
    return emitOpError("expects a rotations operand or a seed attribute to "
                       "draw the rotations from");
  if (Value rot = getRotations())
    if (failed(verifyShape(op, "rotations [H, D, n_hashes, sum(n_buckets)/2]",
                           rot.getType(),
                           {h, d, numHashes, getRotationWidth()})))
      return failure();
  if (Value mask = getMask())
    if (failed(verifyShape(op, "mask [B, L]", mask.getType(), {b, l})))
      return failure();

  if (failed(verifyShape(op, "result [B, H, L, D]", getOut().getType(), qk)) ||
      failed(verifyElementType(op, "result", getOut().getType(),
                               elementTypeOf(getQk()))))
    return failure();
  size_t numTraining = getTrainingResults().size();
  if (numTraining != 0 && numTraining != 2)
    return emitOpError() << "expects both training results (lse and buckets) "
                            "or neither, got "
                         << numTraining << " extra result(s)";
  if (Value lse = getLse()) {
    SmallVector<int64_t> perRound = {b, h, numHashes, l};
    if (failed(verifyShape(op, "lse [B, H, n_hashes, L]", lse.getType(),
                           perRound)) ||
        failed(verifyElementType(op, "lse", lse.getType(),
                                 Float32Type::get(getContext()))) ||
        failed(verifyShape(op, "buckets [B, H, n_hashes, L]",
                           getBuckets().getType(), perRound)) ||
        failed(verifyElementType(op, "buckets", getBuckets().getType(),
                                 IntegerType::get(getContext(), 32))))
      return failure();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// LocalAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult LocalAttentionOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> q = shapeOf(getQ());
  if (failed(verifyLike(op, "k", getK(), getQ())) ||
      failed(verifyLike(op, "v", getV(), getQ())))
    return failure();
  if (failed(verifyChunking(op, q[2], /*sortedLen=*/0, getChunkLen(),
                            getChunksBefore(), getChunksAfter())))
    return failure();
  if (Value mask = getMask())
    if (failed(verifyShape(op, "mask [B, L]", mask.getType(), {q[0], q[2]})))
      return failure();
  return verifyShape(op, "result [B, H, L, D]", getOut().getType(), q);
}

//===----------------------------------------------------------------------===//
// Steps of LSH attention
//===----------------------------------------------------------------------===//

LogicalResult LshRotationsOp::verify() {
  if (getSeedValue() && getSeed())
    return emitOpError("expects a seed attribute or a seed operand, not both");
  if (!getSeedValue() && !getSeed())
    return emitOpError("expects a seed attribute or a seed operand");
  return success();
}

LogicalResult LshHashOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyBucketFactors(op, getNBuckets())))
    return failure();
  ArrayRef<int64_t> qk = shapeOf(getQk());
  ArrayRef<int64_t> rot = shapeOf(getRotations());
  int64_t width = 0;
  for (int64_t f : getNBuckets())
    width += f / 2;
  if (failed(verifyShape(op, "rotations [H, D, n_hashes, sum(n_buckets)/2]",
                         getRotations().getType(),
                         {qk[1], qk[3], kAnyDim, width})))
    return failure();
  return verifyShape(op, "buckets [B, H, n_hashes, L]", getBuckets().getType(),
                     {qk[0], qk[1], rot[2], qk[2]});
}

LogicalResult BucketSortOp::verify() {
  Operation *op = getOperation();
  if (getNumBuckets() < 1)
    return emitOpError() << "expects num_buckets to be at least 1, got "
                         << getNumBuckets();
  ArrayRef<int64_t> shape = shapeOf(getBuckets());
  if (failed(verifyShape(op, "perm", getPerm().getType(), shape)))
    return failure();
  return verifyShape(op, "inverse", getInverse().getType(), shape);
}

LogicalResult SortedChunkAttentionOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> qk = shapeOf(getQk());
  int64_t b = qk[0], h = qk[1], l = qk[2], d = qk[3];
  if (failed(verifyLike(op, "v", getV(), getQk())))
    return failure();
  ArrayRef<int64_t> perm = shapeOf(getPerm());
  int64_t r = perm[2];
  if (failed(verifyShape(op, "perm [B, H, n_hashes, L]", getPerm().getType(),
                         {b, h, kAnyDim, l})))
    return failure();
  int64_t sorted = isDynamic(r) ? kAnyDim : sortedLength(r, l);
  if (failed(verifyChunking(op, l, sorted, getChunkLen(), getChunksBefore(),
                            getChunksAfter())))
    return failure();
  if (Value inverse = getInverse()) {
    if (failed(verifyShape(op, "inverse", inverse.getType(), perm)))
      return failure();
  } else if (getDuplicateCorrection()) {
    return emitOpError("expects the inverse permutation operand when "
                       "duplicate_correction is set");
  }
  if (Value mask = getMask())
    if (failed(verifyShape(op, "mask [B, L]", mask.getType(), {b, l})))
      return failure();
  if (failed(verifyShape(op, "out [B, H, n_hashes, L, D]", getOut().getType(),
                         {b, h, r, l, d})))
    return failure();
  return verifyShape(op, "lse [B, H, n_hashes, L]", getLse().getType(), perm);
}

LogicalResult UnsortOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> input = shapeOf(getInput());
  if (failed(verifyShape(op, "inverse [B, H, n_hashes, L]",
                         getInverse().getType(), input.take_front(4))))
    return failure();
  if (getInput().getType() != getResult().getType())
    return emitOpError() << "expects the result type to equal the input type "
                         << getInput().getType() << ", got "
                         << getResult().getType();
  return success();
}

LogicalResult CombineRoundsOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> out = shapeOf(getOut());
  if (failed(verifyShape(op, "lse [B, H, n_hashes, L]", getLse().getType(),
                         out.take_front(4))))
    return failure();
  return verifyShape(op, "result [B, H, L, D]", getResult().getType(),
                     {out[0], out[1], out[3], out[4]});
}

LogicalResult LengthMaskOp::verify() {
  int64_t length = getLength();
  int64_t seqLen = shapeOf(getResult())[1];
  if (length < 0 || (!isDynamic(seqLen) && length > seqLen))
    return emitOpError() << "expects a length in [0, " << seqLen
                         << "] (the mask's sequence dimension), got " << length;
  return success();
}

//===----------------------------------------------------------------------===//
// ReversibleOp
//===----------------------------------------------------------------------===//

/// A residual function takes one value of the block's type and yields one.
static LogicalResult verifyResidualRegion(ReversibleOp op, Region &region,
                                          StringRef name, StringRef input) {
  Type type = op.getX1().getType();
  Block &block = region.front();
  if (block.getNumArguments() != 1)
    return op.emitOpError()
           << "expects region '" << name << "' to take one argument of type "
           << type << " (" << input << "), got " << block.getNumArguments()
           << " arguments";
  if (block.getArgument(0).getType() != type)
    return op.emitOpError()
           << "expects region '" << name << "' to take one argument of type "
           << type << " (" << input << "), got one of type "
           << block.getArgument(0).getType();
  auto yield = dyn_cast<YieldOp>(block.getTerminator());
  if (!yield)
    return op.emitOpError()
           << "expects region '" << name << "' to end with reformer.yield";
  if (yield.getValues().size() != 1 ||
      yield.getValues().front().getType() != type)
    return yield.emitOpError()
           << "expects region '" << name << "' to yield one value of type "
           << type << ", got " << yield.getValues().getTypes();
  return success();
}

LogicalResult ReversibleOp::verifyRegions() {
  if (failed(verifyResidualRegion(*this, getF(), "f", "x2")))
    return failure();
  return verifyResidualRegion(*this, getG(), "g", "y1");
}

//===----------------------------------------------------------------------===//
// ChunkedFfnOp
//===----------------------------------------------------------------------===//

/// Checks the chunk and the weights of a feed-forward layer on `x`.
static LogicalResult verifyFfn(Operation *op, int64_t chunk, Value x, Value w1,
                               Value b1, Value w2) {
  if (chunk < 1)
    return op->emitOpError() << "expects a positive chunk, got " << chunk;
  int64_t m = shapeOf(x)[2];
  int64_t f = shapeOf(w1)[1];
  if (failed(
          verifyShape(op, "w1 [d_model, d_ff]", w1.getType(), {m, kAnyDim})) ||
      failed(verifyShape(op, "b1 [d_ff]", b1.getType(), {f})))
    return failure();
  return verifyShape(op, "w2 [d_ff, d_model]", w2.getType(), {f, m});
}

LogicalResult ChunkedFfnOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyFfn(op, getChunk(), getInput(), getW1(), getB1(), getW2())))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getInput());
  if (failed(verifyShape(op, "b2 [d_model]", getB2().getType(), {x[2]})))
    return failure();
  return verifyShape(op, "result [B, L, d_model]", getResult().getType(), x);
}

//===----------------------------------------------------------------------===//
// Ops around the blocks
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  ArrayRef<int64_t> tokens = shapeOf(getTokens());
  ArrayRef<int64_t> table = shapeOf(getTable());
  return verifyShape(getOperation(), "result [B, L, d_model]",
                     getResult().getType(), {tokens[0], tokens[1], table[1]});
}

/// The axial weights (or their gradients) `[n_t, d_t]` must cover the
/// sequence (Π n_t ≥ L) and the model width (Σ d_t = d_model).
static LogicalResult verifyAxialWeights(Operation *op, ValueRange weights,
                                        int64_t len, int64_t dModel) {
  int64_t width = 0, positions = 1;
  bool dynamic = false;
  for (Value w : weights) {
    ArrayRef<int64_t> shape = shapeOf(w);
    dynamic |= isDynamic(shape[0]) || isDynamic(shape[1]);
    positions *= shape[0];
    width += shape[1];
  }
  if (!dynamic && !isDynamic(dModel) && width != dModel)
    return op->emitOpError()
           << "expects the axial embedding widths to sum to d_model = "
           << dModel << ", got " << width;
  if (!dynamic && !isDynamic(len) && positions < len)
    return op->emitOpError()
           << "expects the axial shape to cover the sequence length " << len
           << ", got " << positions << " positions";
  return success();
}

LogicalResult AxialPosEmbeddingOp::verify() {
  if (getWeights().empty())
    return emitOpError("expects at least one axial weight");
  ArrayRef<int64_t> x = shapeOf(getInput());
  if (failed(verifyAxialWeights(getOperation(), getWeights(), x[1], x[2])))
    return failure();
  return verifyShape(getOperation(), "result", getResult().getType(), x);
}

/// Layer norm and its gradient: a positive epsilon, an input of rank ≥ 1,
/// and gamma over its last dimension.
static LogicalResult verifyLayerNormInput(Operation *op, APFloat epsilon,
                                          Value input, Value gamma) {
  if (epsilon.convertToDouble() <= 0.0)
    return op->emitOpError()
           << "expects a positive epsilon, got " << epsilon.convertToDouble();
  ArrayRef<int64_t> x = shapeOf(input);
  if (x.empty())
    return op->emitOpError("expects an input of rank at least 1");
  return verifyShape(op, "gamma", gamma.getType(), {x.back()});
}

LogicalResult LayerNormOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyLayerNormInput(op, getEpsilon(), getInput(), getGamma())))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getInput());
  if (failed(verifyShape(op, "beta", getBeta().getType(), {x.back()})))
    return failure();
  return verifyShape(op, "result", getResult().getType(), x);
}

/// Checks that a dense layer's input has a last dimension K and its weight
/// is [K, N].
static LogicalResult verifyDenseWeight(Operation *op, Value input,
                                       Value weight) {
  ArrayRef<int64_t> x = shapeOf(input);
  if (x.empty())
    return op->emitOpError("expects an input of rank at least 1");
  return verifyShape(op, "weight [K, N]", weight.getType(),
                     {x.back(), kAnyDim});
}

LogicalResult DenseOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyDenseWeight(op, getInput(), getWeight())))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getInput());
  ArrayRef<int64_t> w = shapeOf(getWeight());
  if (Value bias = getBias())
    if (failed(verifyShape(op, "bias [N]", bias.getType(), {w[1]})))
      return failure();
  SmallVector<int64_t> expected(x);
  expected.back() = w[1];
  return verifyShape(op, "result", getResult().getType(), expected);
}

/// Checks `[B, L, M]` against `[B, H, L, D]` with `H · D = M`.
static LogicalResult verifyHeads(Operation *op, Value flat, Value heads,
                                 StringRef what) {
  ArrayRef<int64_t> f = shapeOf(flat), s = shapeOf(heads);
  int64_t h = s[1], d = s[3], m = f[2];
  if (!isDynamic(h) && !isDynamic(d) && !isDynamic(m) && h * d != m)
    return op->emitOpError()
           << "expects heads * head_dim = " << h << " * " << d << " = " << h * d
           << " to equal the model dimension " << m;
  return verifyShape(op, what, heads.getType(), {f[0], h, f[1], d});
}

LogicalResult SplitHeadsOp::verify() {
  return verifyHeads(getOperation(), getInput(), getResult(),
                     "result [B, H, L, D]");
}

LogicalResult MergeHeadsOp::verify() {
  return verifyHeads(getOperation(), getResult(), getInput(),
                     "input [B, H, L, D]");
}

OpFoldResult SplitHeadsOp::fold(FoldAdaptor) {
  // split_heads(merge_heads(x)) = x when the head layout is the same.
  if (auto merge = getInput().getDefiningOp<MergeHeadsOp>())
    if (merge.getInput().getType() == getType())
      return merge.getInput();
  return {};
}

OpFoldResult MergeHeadsOp::fold(FoldAdaptor) {
  if (auto split = getInput().getDefiningOp<SplitHeadsOp>())
    if (split.getInput().getType() == getType())
      return split.getInput();
  return {};
}

LogicalResult SoftmaxCrossEntropyOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  SmallVector<int64_t> positions = {logits[0], logits[1]};
  if (failed(
          verifyShape(op, "targets [B, L]", getTargets().getType(), positions)))
    return failure();
  if (Value weights = getWeights())
    return verifyShape(op, "weights [B, L]", weights.getType(), positions);
  return success();
}

//===----------------------------------------------------------------------===//
// Gradients and optimizer updates
//===----------------------------------------------------------------------===//

/// Checks that the gradient `grad` is an f32 tensor of `shape`.
static LogicalResult verifyGradient(Operation *op, StringRef name, Value grad,
                                    ArrayRef<int64_t> shape) {
  if (failed(verifyShape(op, name, grad.getType(), shape)))
    return failure();
  return verifyElementType(op, name, grad.getType(),
                           Float32Type::get(op->getContext()));
}

LogicalResult DenseGradOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyDenseWeight(op, getInput(), getWeight())))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getInput());
  ArrayRef<int64_t> w = shapeOf(getWeight());
  SmallVector<int64_t> dy(x);
  dy.back() = w[1];
  if (failed(verifyShape(op, "result_grad", getResultGrad().getType(), dy)) ||
      failed(verifyGradient(op, "input_grad", getInputGrad(), x)) ||
      failed(verifyGradient(op, "weight_grad", getWeightGrad(), w)))
    return failure();
  return verifyGradient(op, "bias_grad [N]", getBiasGrad(), {w[1]});
}

LogicalResult LayerNormGradOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyLayerNormInput(op, getEpsilon(), getInput(), getGamma())))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getInput());
  if (failed(verifyShape(op, "result_grad", getResultGrad().getType(), x)) ||
      failed(verifyGradient(op, "input_grad", getInputGrad(), x)) ||
      failed(verifyGradient(op, "gamma_grad", getGammaGrad(), {x.back()})))
    return failure();
  return verifyGradient(op, "beta_grad", getBetaGrad(), {x.back()});
}

LogicalResult SoftmaxCrossEntropyGradOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> logits = shapeOf(getLogits());
  SmallVector<int64_t> positions = {logits[0], logits[1]};
  if (failed(
          verifyShape(op, "targets [B, L]", getTargets().getType(), positions)))
    return failure();
  if (Value weights = getWeights())
    if (failed(verifyShape(op, "weights [B, L]", weights.getType(), positions)))
      return failure();
  return verifyGradient(op, "logits_grad", getLogitsGrad(), logits);
}

LogicalResult ClipScaleOp::verify() {
  if (getGrads().empty())
    return emitOpError("expects at least one gradient");
  double maxNorm = getMaxNorm().convertToDouble();
  if (!(maxNorm > 0.0))
    return emitOpError() << "expects a positive max_norm, got " << maxNorm;
  return success();
}

LogicalResult AdamUpdateOp::verify() {
  Operation *op = getOperation();
  for (auto [name, beta] : {std::make_pair("beta1", getBeta1()),
                            std::make_pair("beta2", getBeta2())}) {
    double value = beta.convertToDouble();
    if (!(value >= 0.0 && value < 1.0))
      return emitOpError() << "expects " << name << " in [0, 1), got " << value;
  }
  if (getEpsilon().convertToDouble() <= 0.0)
    return emitOpError() << "expects a positive epsilon, got "
                         << getEpsilon().convertToDouble();
  if (getWeightDecay().convertToDouble() < 0.0)
    return emitOpError() << "expects a non-negative weight_decay, got "
                         << getWeightDecay().convertToDouble();
  ArrayRef<int64_t> p = shapeOf(getParam());
  if (failed(verifyShape(op, "grad", getGrad().getType(), p)) ||
      failed(verifyGradient(op, "m", getM(), p)) ||
      failed(verifyGradient(op, "v", getV(), p)) ||
      failed(verifyLike(op, "new_param", getNewParam(), getParam())) ||
      failed(verifyGradient(op, "new_m", getNewM(), p)))
    return failure();
  return verifyGradient(op, "new_v", getNewV(), p);
}

LogicalResult ChunkedFfnGradOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyFfn(op, getChunk(), getInput(), getW1(), getB1(), getW2())))
    return failure();
  ArrayRef<int64_t> x = shapeOf(getInput());
  if (failed(verifyShape(op, "result_grad", getResultGrad().getType(), x)) ||
      failed(verifyGradient(op, "input_grad", getInputGrad(), x)) ||
      failed(verifyGradient(op, "w1_grad", getW1Grad(), shapeOf(getW1()))) ||
      failed(verifyGradient(op, "b1_grad", getB1Grad(), shapeOf(getB1()))) ||
      failed(verifyGradient(op, "w2_grad", getW2Grad(), shapeOf(getW2()))))
    return failure();
  return verifyGradient(op, "b2_grad", getB2Grad(), {x[2]});
}

int64_t LshAttentionGradOp::getNumBucketsTotal() {
  return productOf(getNBuckets());
}

LogicalResult LshAttentionGradOp::verify() {
  Operation *op = getOperation();
  if (failed(verifyBucketFactors(op, getNBuckets())))
    return failure();
  ArrayRef<int64_t> qk = shapeOf(getQk());
  int64_t b = qk[0], h = qk[1], l = qk[2];
  ArrayRef<int64_t> lse = shapeOf(getLse());
  int64_t numHashes = lse[2];
  if (!isDynamic(numHashes) && numHashes < 1)
    return emitOpError("expects lse [B, H, n_hashes, L] with at least one "
                       "hash round");
  SmallVector<int64_t> perRound = {b, h, numHashes, l};
  if (failed(verifyLike(op, "v", getV(), getQk())) ||
      failed(verifyLike(op, "out", getOut(), getQk())) ||
      failed(verifyShape(op, "result_grad", getResultGrad().getType(), qk)) ||
      failed(verifyShape(op, "lse [B, H, n_hashes, L]", getLse().getType(),
                         perRound)) ||
      failed(verifyShape(op, "buckets [B, H, n_hashes, L]",
                         getBuckets().getType(), perRound)))
    return failure();
  if (failed(verifyChunking(op, l, sortedLength(numHashes, l), getChunkLen(),
                            getChunksBefore(), getChunksAfter())))
    return failure();
  if (Value mask = getMask())
    if (failed(verifyShape(op, "mask [B, L]", mask.getType(), {b, l})))
      return failure();
  if (failed(verifyGradient(op, "qk_grad", getQkGrad(), qk)))
    return failure();
  return verifyGradient(op, "v_grad", getVGrad(), qk);
}

LogicalResult LocalAttentionGradOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> q = shapeOf(getQ());
  if (failed(verifyLike(op, "k", getK(), getQ())) ||
      failed(verifyLike(op, "v", getV(), getQ())) ||
      failed(verifyShape(op, "result_grad", getResultGrad().getType(), q)))
    return failure();
  if (failed(verifyChunking(op, q[2], /*sortedLen=*/0, getChunkLen(),
                            getChunksBefore(), getChunksAfter())))
    return failure();
  if (Value mask = getMask())
    if (failed(verifyShape(op, "mask [B, L]", mask.getType(), {q[0], q[2]})))
      return failure();
  if (failed(verifyGradient(op, "q_grad", getQGrad(), q)) ||
      failed(verifyGradient(op, "k_grad", getKGrad(), q)))
    return failure();
  return verifyGradient(op, "v_grad", getVGrad(), q);
}

LogicalResult EmbeddingGradOp::verify() {
  Operation *op = getOperation();
  ArrayRef<int64_t> tokens = shapeOf(getTokens());
  ArrayRef<int64_t> dy = shapeOf(getResultGrad());
  if (failed(verifyShape(op, "result_grad [B, L, d_model]",
                         getResultGrad().getType(),
                         {tokens[0], tokens[1], kAnyDim})))
    return failure();
  return verifyGradient(op, "table_grad [V, d_model]", getTableGrad(),
                        {kAnyDim, dy[2]});
}

LogicalResult AxialPosEmbeddingGradOp::verify() {
  if (getWeightGrads().empty())
    return emitOpError("expects at least one axial weight gradient");
  for (Value w : getWeightGrads())
    if (failed(verifyElementType(getOperation(), "weight_grads", w.getType(),
                                 Float32Type::get(getContext()))))
      return failure();
  ArrayRef<int64_t> dy = shapeOf(getResultGrad());
  return verifyAxialWeights(getOperation(), getWeightGrads(), dy[1], dy[2]);
}

LogicalResult AdafactorUpdateOp::verify() {
  Operation *op = getOperation();
  for (auto [name, value, lowest] :
       {std::make_tuple("decay_rate", getDecayRate(), 0.0),
        std::make_tuple("epsilon1", getEpsilon1(), 0.0),
        std::make_tuple("clipping_threshold", getClippingThreshold(), 0.0)})
    if (!(value.convertToDouble() > lowest))
      return emitOpError() << "expects a positive " << name << ", got "
                           << value.convertToDouble();
  if (getEpsilon2().convertToDouble() < 0.0)
    return emitOpError() << "expects a non-negative epsilon2, got "
                         << getEpsilon2().convertToDouble();
  ArrayRef<int64_t> p = shapeOf(getParam());
  if (failed(verifyShape(op, "grad", getGrad().getType(), p)) ||
      failed(verifyLike(op, "new_param", getNewParam(), getParam())))
    return failure();
  // Factored moments: rows (every dimension but the last) and columns.
  SmallVector<int64_t> rows = {p.empty() ? 1 : p[0]};
  if (p.size() >= 2) {
    int64_t r = 1;
    for (int64_t d : p.drop_back())
      r = isDynamic(d) || isDynamic(r) ? kAnyDim : r * d;
    rows = {r};
  }
  if (p.size() >= 2 && !getVCol())
    return emitOpError("expects a v_col operand for a parameter of rank ")
           << p.size() << " (factored moments)";
  if (p.size() < 2 && getVCol())
    return emitOpError("expects no v_col operand for a parameter of rank ")
           << p.size() << " (unfactored moments)";
  if (failed(verifyGradient(op, "v_row", getVRow(), rows)) ||
      failed(verifyGradient(op, "new_v_row", getNewVRow(), rows)))
    return failure();
  if (Value col = getVCol()) {
    if (!getNewVCol())
      return emitOpError("expects a new_v_col result with v_col");
    if (failed(verifyGradient(op, "v_col", col, {p.back()})) ||
        failed(verifyGradient(op, "new_v_col", getNewVCol(), {p.back()})))
      return failure();
  } else if (getNewVCol()) {
    return emitOpError("expects no new_v_col result without v_col");
  }
  return success();
}

LogicalResult DropoutOp::verify() {
  double rate = getRate().convertToDouble();
  if (!(rate >= 0.0 && rate < 1.0))
    return emitOpError() << "expects a rate in [0, 1), got " << rate;
  return verifyLike(getOperation(), "result", getResult(), getInput());
}

OpFoldResult DropoutOp::fold(FoldAdaptor) {
  // Inference (no seed) and rate 0 keep everything.
  if (!getSeed() || getRate().convertToDouble() == 0.0)
    return getInput();
  return {};
}
