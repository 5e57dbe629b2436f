//===- GradientRules.cpp - Per-op gradients for the training step ---------===//

#include "GradientRules.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// The f32 tensor type of `v`'s shape: every gradient is f32.
RankedTensorType f32Like(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  return type.clone(Float32Type::get(v.getContext()));
}

/// Copies the named attributes of `from` that are set.
SmallVector<NamedAttribute> copyAttrs(Operation *from,
                                      ArrayRef<StringRef> names) {
  SmallVector<NamedAttribute> attrs;
  for (StringRef name : names)
    if (Attribute a = from->getAttr(name))
      attrs.emplace_back(StringAttr::get(from->getContext(), name), a);
  return attrs;
}

SmallVector<OpFoldResult> indexAttrs(OpBuilder &b, ArrayRef<int64_t> values) {
  SmallVector<OpFoldResult> out;
  for (int64_t v : values)
    out.push_back(b.getIndexAttr(v));
  return out;
}

/// Rules, one per op: `grads` has one slot per operand, null by default.
struct Rules {
  OpBuilder &b;
  const ForwardValues &fwd;
  Value dy; ///< The gradient of the (first) result.

  Value at(Value original) { return fwd.lookup(original); }

  LogicalResult dense(DenseOp op, SmallVector<Value> &grads) {
    Value x = op.getInput(), w = op.getWeight();
    int64_t n = cast<RankedTensorType>(w.getType()).getDimSize(1);
    auto g = DenseGradOp::create(
        b, op.getLoc(),
        TypeRange{f32Like(x), f32Like(w),
                  RankedTensorType::get({n}, b.getF32Type())},
        ValueRange{at(x), at(w), dy});
    grads[0] = g.getInputGrad();
    grads[1] = g.getWeightGrad();
    if (op.getBias())
      grads[2] = g.getBiasGrad();
    return success();
  }

  LogicalResult layerNorm(LayerNormOp op, SmallVector<Value> &grads) {
    auto g = LayerNormGradOp::create(
        b, op.getLoc(),
        TypeRange{f32Like(op.getInput()), f32Like(op.getGamma()),
                  f32Like(op.getBeta())},
        ValueRange{at(op.getInput()), at(op.getGamma()), dy},
        copyAttrs(op, {"epsilon"}));
    grads = {g.getInputGrad(), g.getGammaGrad(), g.getBetaGrad()};
    return success();
  }

  LogicalResult chunkedFfn(ChunkedFfnOp op, SmallVector<Value> &grads) {
    auto g = ChunkedFfnGradOp::create(
        b, op.getLoc(),
        TypeRange{f32Like(op.getInput()), f32Like(op.getW1()),
                  f32Like(op.getB1()), f32Like(op.getW2()),
                  f32Like(op.getB2())},
        ValueRange{at(op.getInput()), at(op.getW1()), at(op.getB1()),
                   at(op.getW2()), dy},
        copyAttrs(op, {"chunk", "activation"}));
    grads = {g.getInputGrad(), g.getW1Grad(), g.getB1Grad(), g.getW2Grad(),
             g.getB2Grad()};
    return success();
  }

  LogicalResult lshAttention(LshAttentionOp op, SmallVector<Value> &grads) {
    auto [lse, buckets] = fwd.lshStatistics(op);
    SmallVector<Value> operands = {
        at(op.getQk()), at(op.getV()), at(op.getOut()), dy, lse, buckets};
    if (op.getMask())
      operands.push_back(at(op.getMask()));
    auto g = LshAttentionGradOp::create(
        b, op.getLoc(), TypeRange{f32Like(op.getQk()), f32Like(op.getV())},
        operands,
        copyAttrs(op, {"n_buckets", "chunk_len", "chunks_before",
                       "chunks_after", "causal", "duplicate_correction"}));
    grads[0] = g.getQkGrad();
    grads[1] = g.getVGrad();
    return success();
  }

  LogicalResult localAttention(LocalAttentionOp op, SmallVector<Value> &grads) {
    SmallVector<Value> operands = {at(op.getQ()), at(op.getK()), at(op.getV()),
                                   dy};
    if (op.getMask())
      operands.push_back(at(op.getMask()));
    auto g = LocalAttentionGradOp::create(
        b, op.getLoc(),
        TypeRange{f32Like(op.getQ()), f32Like(op.getK()), f32Like(op.getV())},
        operands,
        copyAttrs(op,
                  {"chunk_len", "chunks_before", "chunks_after", "causal"}));
    grads[0] = g.getQGrad();
    grads[1] = g.getKGrad();
    grads[2] = g.getVGrad();
    return success();
  }

  LogicalResult embedding(EmbeddingOp op, SmallVector<Value> &grads) {
    grads[1] = EmbeddingGradOp::create(b, op.getLoc(), f32Like(op.getTable()),
                                       at(op.getTokens()), dy);
    return success();
  }

  LogicalResult axial(AxialPosEmbeddingOp op, SmallVector<Value> &grads) {
    SmallVector<Type> types;
    for (Value w : op.getWeights())
      types.push_back(f32Like(w));
    auto g = AxialPosEmbeddingGradOp::create(b, op.getLoc(), types, dy);
    grads[0] = dy;
    for (auto [i, w] : llvm::enumerate(g.getWeightGrads()))
      grads[i + 1] = w;
    return success();
  }

  /// Each operand's gradient is its slice of the result's.
  LogicalResult concat(tensor::ConcatOp op, SmallVector<Value> &grads) {
    int64_t dim = op.getDim(), offset = 0;
    for (auto [i, input] : llvm::enumerate(op.getInputs())) {
      auto type = f32Like(input);
      SmallVector<int64_t> offsets(type.getRank(), 0);
      offsets[dim] = offset;
      grads[i] = tensor::ExtractSliceOp::create(
          b, op.getLoc(), type, dy, indexAttrs(b, offsets),
          indexAttrs(b, type.getShape()),
          indexAttrs(b, SmallVector<int64_t>(type.getRank(), 1)));
      offset += type.getDimSize(dim);
    }
    return success();
  }

  /// The slice's gradient, zero-padded back to the source's shape.
  LogicalResult extractSlice(tensor::ExtractSliceOp op,
                             SmallVector<Value> &grads) {
    if (!op.hasUnitStride() || !op.getSourceType().hasStaticShape() ||
        !op.getType().hasStaticShape() ||
        ShapedType::isDynamicShape(op.getStaticOffsets()))
      return op.emitOpError("has no gradient rule unless static and unit "
                            "strided");
    ArrayRef<int64_t> source = op.getSourceType().getShape();
    ArrayRef<int64_t> offsets = op.getStaticOffsets();
    ArrayRef<int64_t> sizes = op.getType().getShape();
    SmallVector<int64_t> high;
    for (size_t i = 0; i < source.size(); ++i)
      high.push_back(source[i] - offsets[i] - sizes[i]);
    Value zero =
        arith::ConstantOp::create(b, op.getLoc(), b.getF32FloatAttr(0));
    grads[0] = tensor::PadOp::create(b, op.getLoc(), f32Like(op.getSource()),
                                     dy, indexAttrs(b, offsets),
                                     indexAttrs(b, high), zero);
    return success();
  }

  /// Padding's gradient is the unpadded part.
  LogicalResult pad(tensor::PadOp op, SmallVector<Value> &grads) {
    auto type = f32Like(op.getSource());
    if (!type.hasStaticShape() || ShapedType::isDynamicShape(op.getStaticLow()))
      return op.emitOpError("has no gradient rule unless static");
    grads[0] = tensor::ExtractSliceOp::create(
        b, op.getLoc(), type, dy, indexAttrs(b, op.getStaticLow()),
        indexAttrs(b, type.getShape()),
        indexAttrs(b, SmallVector<int64_t>(type.getRank(), 1)));
    return success();
  }
};

} // namespace

FailureOr<SmallVector<Value>>
mlir::reformer::buildOperandGradients(OpBuilder &b, Operation *op,
                                      ArrayRef<Value> resultGrads,
                                      const ForwardValues &forward) {
  SmallVector<Value> grads(op->getNumOperands());
  // Constants and other ops without operands pass nothing back.
  if (resultGrads.empty() || !resultGrads.front() || op->getNumOperands() == 0)
    return grads;
  Rules rules{b, forward, resultGrads.front()};
  LogicalResult result =
      llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case([&](DenseOp o) { return rules.dense(o, grads); })
          .Case([&](LayerNormOp o) { return rules.layerNorm(o, grads); })
          .Case([&](ChunkedFfnOp o) { return rules.chunkedFfn(o, grads); })
          .Case([&](LshAttentionOp o) { return rules.lshAttention(o, grads); })
          .Case([&](LocalAttentionOp o) {
            return rules.localAttention(o, grads);
          })
          .Case([&](EmbeddingOp o) { return rules.embedding(o, grads); })
          .Case([&](AxialPosEmbeddingOp o) { return rules.axial(o, grads); })
          .Case([&](SplitHeadsOp o) {
            grads[0] = MergeHeadsOp::create(b, o.getLoc(),
                                            f32Like(o.getInput()), rules.dy);
            return success();
          })
          .Case([&](MergeHeadsOp o) {
            grads[0] = SplitHeadsOp::create(b, o.getLoc(),
                                            f32Like(o.getInput()), rules.dy);
            return success();
          })
          .Case([&](DropoutOp o) {
            // The same mask, from the same seed and salt, on the gradient.
            Value seed =
                o.getSeed() ? rules.at(o.getSeed()) : forward.dropoutSeed();
            grads[0] =
                seed ? DropoutOp::create(b, o.getLoc(), f32Like(o.getInput()),
                                         rules.dy, seed, o.getRateAttr(),
                                         o.getSaltAttr())
                           .getResult()
                     : rules.dy;
            return success();
          })
          .Case([&](arith::AddFOp o) {
            grads = {rules.dy, rules.dy};
            return success();
          })
          // Mixed precision's conversions: gradients are f32 on both sides.
          .Case<arith::TruncFOp, arith::ExtFOp>([&](Operation *) {
            grads[0] = rules.dy;
            return success();
          })
          .Case([&](tensor::ConcatOp o) { return rules.concat(o, grads); })
          .Case([&](tensor::ExtractSliceOp o) {
            return rules.extractSlice(o, grads);
          })
          .Case([&](tensor::PadOp o) { return rules.pad(o, grads); })
          .Default([&](Operation *other) {
            return other->emitOpError(
                "has no gradient rule: rf-derive-training-step cannot "
                "differentiate through it");
          });
  if (failed(result))
    return failure();
  return grads;
}
