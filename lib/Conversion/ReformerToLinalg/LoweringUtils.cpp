//===- LoweringUtils.cpp - Helpers shared by the reformer lowerings -------===//

#include "LoweringUtils.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>
#include <limits>

#include <atomic>

using namespace mlir;
using namespace mlir::reformer;

Value lowering::toF32(ImplicitLocOpBuilder &b, Value v) {
  auto type = cast<FloatType>(v.getType());
  if (type.isF32())
    return v;
  if (type.getWidth() < 32)
    return arith::ExtFOp::create(b, b.getF32Type(), v);
  return arith::TruncFOp::create(b, b.getF32Type(), v);
}

Value lowering::fromF32(ImplicitLocOpBuilder &b, Value v, Type type) {
  auto floatType = cast<FloatType>(type);
  if (floatType.isF32())
    return v;
  if (floatType.getWidth() < 32)
    return arith::TruncFOp::create(b, type, v);
  return arith::ExtFOp::create(b, type, v);
}

Value lowering::f32Const(ImplicitLocOpBuilder &b, double value) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(value));
}

Value lowering::indexConst(ImplicitLocOpBuilder &b, int64_t value) {
  return arith::ConstantIndexOp::create(b, value);
}

Value lowering::emptyTensor(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                            Type elementType) {
  return tensor::EmptyOp::create(b, shape, elementType);
}

Value lowering::filledTensor(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                             double value) {
  Value empty = emptyTensor(b, shape, b.getF32Type());
  return linalg::FillOp::create(b, ValueRange{f32Const(b, value)},
                                ValueRange{empty})
      .getResult(0);
}

Value lowering::scaledF32Tensor(ImplicitLocOpBuilder &b, Value tensor,
                                double scale) {
  auto type = cast<RankedTensorType>(tensor.getType());
  if (type.getElementType().isF32() && scale == 1.0)
    return tensor;
  AffineMap all = identity(b.getContext(), type.getRank());
  return generic(b, tensor, emptyTensor(b, type.getShape(), b.getF32Type()),
                 {all, all}, type.getRank(), {},
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   Value x = toF32(ib, a[0]);
                   if (scale != 1.0)
                     x = arith::MulFOp::create(ib, x, f32Const(ib, scale));
                   linalg::YieldOp::create(ib, ValueRange{x});
                 })[0];
}

SmallVector<Value> lowering::generic(ImplicitLocOpBuilder &b, ValueRange inputs,
                                     ValueRange outputs,
                                     ArrayRef<AffineMap> maps, unsigned numDims,
                                     ArrayRef<unsigned> reductionDims,
                                     GenericBody body) {
  SmallVector<utils::IteratorType> iterators(numDims,
                                             utils::IteratorType::parallel);
  for (unsigned d : reductionDims)
    iterators[d] = utils::IteratorType::reduction;
  SmallVector<Type> resultTypes;
  for (Value out : outputs)
    resultTypes.push_back(out.getType());
  auto op = linalg::GenericOp::create(
      b, resultTypes, inputs, outputs, maps, iterators,
      [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        ImplicitLocOpBuilder ib(nestedLoc, nested);
        body(ib, args);
      });
  return SmallVector<Value>(op.getResults());
}

AffineMap lowering::projection(MLIRContext *ctx, unsigned numDims,
                               ArrayRef<unsigned> dims) {
  SmallVector<AffineExpr> exprs;
  for (unsigned d : dims)
    exprs.push_back(getAffineDimExpr(d, ctx));
  return AffineMap::get(numDims, 0, exprs, ctx);
}

AffineMap lowering::identity(MLIRContext *ctx, unsigned numDims) {
  return AffineMap::getMultiDimIdentityMap(numDims, ctx);
}

SmallVector<Value> lowering::loopIndices(ImplicitLocOpBuilder &b,
                                         unsigned numDims) {
  SmallVector<Value> indices;
  for (unsigned d = 0; d < numDims; ++d)
    indices.push_back(linalg::IndexOp::create(b, d));
  return indices;
}

void lowering::forLoop(ImplicitLocOpBuilder &b, Value lb, Value ub,
                       int64_t step,
                       function_ref<void(ImplicitLocOpBuilder &, Value)> body) {
  scf::ForOp::create(
      b, lb, ub, indexConst(b, step), ValueRange{},
      [&](OpBuilder &nested, Location loc, Value iv, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nested);
        body(ib, iv);
        scf::YieldOp::create(ib);
      });
}

Value lowering::toBuffer(ImplicitLocOpBuilder &b, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  auto op = bufferization::ToBufferOp::create(b, memrefType, tensor,
                                              /*read_only=*/true);
  // One-shot bufferization sees the tensor read here, not where the loops
  // after it load through the buffer. cse would merge two ops' reads of the
  // same tensor into the first; writes between them could then reuse the
  // buffer before the second reads it. A distinct attribute per read keeps
  // them apart.
  static std::atomic<int64_t> reads{0};
  op->setAttr(kReadSiteAttrName, b.getI64IntegerAttr(reads++));
  return op;
}

Value lowering::headsBuffer(ImplicitLocOpBuilder &b, Value heads) {
  auto type = cast<RankedTensorType>(heads.getType());
  ArrayRef<int64_t> s = type.getShape();
  // The [B, L, H·D] rows under the heads, as a dense buffer.
  Value rows;
  if (auto split = heads.getDefiningOp<SplitHeadsOp>()) {
    rows = toBuffer(b, split.getInput());
  } else if (auto transpose = heads.getDefiningOp<linalg::TransposeOp>();
             transpose && transpose.hasPureTensorSemantics() &&
             transpose.getPermutation() == ArrayRef<int64_t>{0, 2, 1, 3}) {
    rows = toBuffer(b, transpose.getInput());
  } else {
    return toBuffer(b, heads);
  }
  // A strided [B, H, L, D] view. reinterpret_cast rather than
  // memref.transpose: buffer liveness analyses follow view-like ops only, and
  // memref.transpose is not one, so its buffer would be freed too early.
  int64_t batch = s[0], numHeads = s[1], len = s[2], dim = s[3];
  SmallVector<int64_t> strides = {len * numHeads * dim, dim, numHeads * dim, 1};
  auto viewType = MemRefType::get(
      s, type.getElementType(),
      StridedLayoutAttr::get(b.getContext(), /*offset=*/0, strides));
  return memref::ReinterpretCastOp::create(
      b, viewType, rows, /*offset=*/0,
      ArrayRef<int64_t>{batch, numHeads, len, dim}, strides);
}

Value lowering::allocBuffer(ImplicitLocOpBuilder &b, RankedTensorType type) {
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  return memref::AllocOp::create(b, memrefType, b.getI64IntegerAttr(64));
}

Value lowering::toTensor(ImplicitLocOpBuilder &b, Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  auto tensorType =
      RankedTensorType::get(type.getShape(), type.getElementType());
  return bufferization::ToTensorOp::create(b, tensorType, buffer,
                                           /*restrict=*/true,
                                           /*writable=*/true);
}

arith::FastMathFlags lowering::maxFlags() {
  return arith::FastMathFlags::reassoc | arith::FastMathFlags::nnan |
         arith::FastMathFlags::nsz;
}

Value lowering::fastMax(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::MaximumFOp::create(
      b, x, y, arith::FastMathFlagsAttr::get(b.getContext(), maxFlags()));
}

Value lowering::relu(ImplicitLocOpBuilder &b, Value x) {
  return arith::MaximumFOp::create(b, x, f32Const(b, 0.0));
}

Value lowering::gelu(ImplicitLocOpBuilder &b, Value x) {
  // x · Φ(x) = x/2 · (1 + erf(x / √2)).
  Value scaled = arith::MulFOp::create(b, x, f32Const(b, M_SQRT1_2));
  Value erf = math::ErfOp::create(b, scaled);
  Value onePlus = arith::AddFOp::create(b, erf, f32Const(b, 1.0));
  Value half = arith::MulFOp::create(b, x, f32Const(b, 0.5));
  return arith::MulFOp::create(b, half, onePlus);
}

Value lowering::geluTanh(ImplicitLocOpBuilder &b, Value x) {
  // x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))).
  Value x3 = arith::MulFOp::create(b, arith::MulFOp::create(b, x, x), x);
  Value inner = arith::AddFOp::create(
      b, x, arith::MulFOp::create(b, x3, f32Const(b, 0.044715)));
  Value t = math::TanhOp::create(
      b, arith::MulFOp::create(b, inner, f32Const(b, std::sqrt(2.0 / M_PI))));
  Value onePlus = arith::AddFOp::create(b, t, f32Const(b, 1.0));
  return arith::MulFOp::create(b, arith::MulFOp::create(b, x, f32Const(b, 0.5)),
                               onePlus);
}

Value lowering::silu(ImplicitLocOpBuilder &b, Value x) {
  // x · sigmoid(x) = x / (1 + exp(−x)).
  Value e = math::ExpOp::create(b, arith::NegFOp::create(b, x));
  return arith::DivFOp::create(b, x,
                               arith::AddFOp::create(b, e, f32Const(b, 1.0)));
}

/// `[rows, K] × [K, N]` in f32 (mixed-precision inputs are widened by
/// linalg.matmul); the result is the f32 accumulator.
Value lowering::matmul(ImplicitLocOpBuilder &b, Value lhs, Value rhs,
                       int64_t rows, int64_t cols) {
  Value acc = filledTensor(b, {rows, cols}, 0.0);
  return linalg::MatmulOp::create(b, TypeRange{acc.getType()},
                                  ValueRange{lhs, rhs}, ValueRange{acc})
      .getResult(0);
}

/// Collapses `[d0, …, dk, K]` to `[d0·…·dk, K]`.
Value lowering::collapseRows(ImplicitLocOpBuilder &b, Value x) {
  auto type = cast<RankedTensorType>(x.getType());
  if (type.getRank() == 2)
    return x;
  ReassociationIndices leading;
  for (int64_t d = 0; d + 1 < type.getRank(); ++d)
    leading.push_back(d);
  return tensor::CollapseShapeOp::create(
      b, x, ArrayRef<ReassociationIndices>{leading, {type.getRank() - 1}});
}

Value lowering::expandRows(ImplicitLocOpBuilder &b, Value x,
                           RankedTensorType resultType) {
  if (resultType.getRank() == 2)
    return x;
  ReassociationIndices leading;
  for (int64_t d = 0; d + 1 < resultType.getRank(); ++d)
    leading.push_back(d);
  return tensor::ExpandShapeOp::create(
      b, resultType, x,
      ArrayRef<ReassociationIndices>{leading, {resultType.getRank() - 1}});
}

std::pair<Value, Value> lowering::layerNormStatistics(ImplicitLocOpBuilder &b,
                                                      Value input, double eps) {
  MLIRContext *ctx = b.getContext();
  auto type = cast<RankedTensorType>(input.getType());
  unsigned rank = type.getRank();
  SmallVector<int64_t> rowShape(type.getShape().drop_back());
  SmallVector<unsigned> rowDims = leadingDims(rank);
  AffineMap all = identity(ctx, rank);
  AffineMap row = projection(ctx, rank, rowDims);
  double invN = 1.0 / static_cast<double>(type.getShape().back());
  // Sums are reassociable so the row reductions vectorize; the per-row
  // mean and 1/σ are computed once per row, not once per element.
  auto reassoc =
      arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::reassoc);
  Value sum = generic(
      b, input, filledTensor(b, rowShape, 0.0), {all, row}, rank, {rank - 1},
      [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        linalg::YieldOp::create(ib, ValueRange{arith::AddFOp::create(
                                        ib, a[1], toF32(ib, a[0]), reassoc)});
      })[0];
  AffineMap rowId = identity(ctx, rank - 1);
  Value mean =
      generic(b, sum, emptyTensor(b, rowShape, b.getF32Type()), {rowId, rowId},
              rank - 1, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                linalg::YieldOp::create(ib, ValueRange{arith::MulFOp::create(
                                                ib, a[0], f32Const(ib, invN))});
              })[0];
  Value sq = generic(
      b, ValueRange{input, mean}, filledTensor(b, rowShape, 0.0),
      {all, row, row}, rank, {rank - 1},
      [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value d = arith::SubFOp::create(ib, toF32(ib, a[0]), a[1]);
        linalg::YieldOp::create(
            ib, ValueRange{arith::AddFOp::create(
                    ib, a[2], arith::MulFOp::create(ib, d, d), reassoc)});
      })[0];
  Value invStd = generic(
      b, sq, emptyTensor(b, rowShape, b.getF32Type()), {rowId, rowId}, rank - 1,
      {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value var = arith::MulFOp::create(ib, a[0], f32Const(ib, invN));
        linalg::YieldOp::create(
            ib, ValueRange{math::RsqrtOp::create(
                    ib, arith::AddFOp::create(ib, var, f32Const(ib, eps)))});
      })[0];
  return {mean, invStd};
}

Value lowering::reluGrad(ImplicitLocOpBuilder &b, Value x) {
  Value positive =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, f32Const(b, 0.0));
  return arith::SelectOp::create(b, positive, f32Const(b, 1.0),
                                 f32Const(b, 0.0));
}

Value lowering::geluGrad(ImplicitLocOpBuilder &b, Value x) {
  // Φ(x) + x·φ(x) = (1 + erf(x/√2))/2 + x·exp(−x²/2)/√(2π).
  Value cdf = arith::MulFOp::create(
      b,
      arith::AddFOp::create(
          b,
          math::ErfOp::create(
              b, arith::MulFOp::create(b, x, f32Const(b, M_SQRT1_2))),
          f32Const(b, 1.0)),
      f32Const(b, 0.5));
  Value pdf = arith::MulFOp::create(
      b,
      math::ExpOp::create(
          b, arith::MulFOp::create(b, arith::MulFOp::create(b, x, x),
                                   f32Const(b, -0.5))),
      f32Const(b, 1.0 / std::sqrt(2.0 * M_PI)));
  return arith::AddFOp::create(b, cdf, arith::MulFOp::create(b, x, pdf));
}

Value lowering::geluTanhGrad(ImplicitLocOpBuilder &b, Value x) {
  // With u = c·(x + k·x³): (1 + tanh u)/2 + x/2·(1 − tanh² u)·c·(1 + 3k·x²).
  double c = std::sqrt(2.0 / M_PI), k = 0.044715;
  Value x2 = arith::MulFOp::create(b, x, x);
  Value inner = arith::MulFOp::create(
      b,
      arith::AddFOp::create(
          b, x,
          arith::MulFOp::create(b, arith::MulFOp::create(b, x2, x),
                                f32Const(b, k))),
      f32Const(b, c));
  Value t = math::TanhOp::create(b, inner);
  Value left = arith::MulFOp::create(
      b, arith::AddFOp::create(b, t, f32Const(b, 1.0)), f32Const(b, 0.5));
  Value sech2 = arith::SubFOp::create(b, f32Const(b, 1.0),
                                      arith::MulFOp::create(b, t, t));
  Value du = arith::MulFOp::create(
      b,
      arith::AddFOp::create(b, f32Const(b, 1.0),
                            arith::MulFOp::create(b, x2, f32Const(b, 3.0 * k))),
      f32Const(b, c));
  Value right = arith::MulFOp::create(
      b,
      arith::MulFOp::create(b, arith::MulFOp::create(b, x, f32Const(b, 0.5)),
                            sech2),
      du);
  return arith::AddFOp::create(b, left, right);
}

Value lowering::siluGrad(ImplicitLocOpBuilder &b, Value x) {
  // σ(x)·(1 + x·(1 − σ(x))).
  Value sigma = arith::DivFOp::create(
      b, f32Const(b, 1.0),
      arith::AddFOp::create(b,
                            math::ExpOp::create(b, arith::NegFOp::create(b, x)),
                            f32Const(b, 1.0)));
  Value oneMinus = arith::SubFOp::create(b, f32Const(b, 1.0), sigma);
  return arith::MulFOp::create(
      b, sigma,
      arith::AddFOp::create(b, f32Const(b, 1.0),
                            arith::MulFOp::create(b, x, oneMinus)));
}

std::pair<Value, Value> lowering::rowMaxAndSumExp(ImplicitLocOpBuilder &b,
                                                  Value logits) {
  MLIRContext *ctx = b.getContext();
  auto type = cast<RankedTensorType>(logits.getType());
  SmallVector<int64_t> rows = {type.getDimSize(0), type.getDimSize(1)};
  AffineMap all = identity(ctx, 3), row = projection(ctx, 3, {0, 1});
  Value max =
      generic(b, logits,
              filledTensor(b, rows, -std::numeric_limits<double>::infinity()),
              {all, row}, 3, {2}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                linalg::YieldOp::create(
                    ib, ValueRange{fastMax(ib, a[1], toF32(ib, a[0]))});
              })[0];
  // reassoc: the row sum vectorizes.
  auto reassoc =
      arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::reassoc);
  Value sumExp = generic(
      b, ValueRange{logits, max}, filledTensor(b, rows, 0.0), {all, row, row},
      3, {2}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value e = math::ExpOp::create(
            ib, arith::SubFOp::create(ib, toF32(ib, a[0]), a[1]));
        linalg::YieldOp::create(
            ib, ValueRange{arith::AddFOp::create(ib, a[2], e, reassoc)});
      })[0];
  return {max, sumExp};
}

SmallVector<unsigned> lowering::leadingDims(unsigned rank) {
  SmallVector<unsigned> dims;
  for (unsigned d = 0; d + 1 < rank; ++d)
    dims.push_back(d);
  return dims;
}

Value lowering::roundWeights(ImplicitLocOpBuilder &b, Value lse) {
  MLIRContext *ctx = b.getContext();
  ArrayRef<int64_t> s = cast<RankedTensorType>(lse.getType()).getShape();
  SmallVector<int64_t> rowShape = {s[0], s[1], s[3]};
  // Loops (b, h, i, r): lse[b, h, r, i].
  AffineMap lse4 = projection(ctx, 4, {0, 1, 3, 2});
  AffineMap row4 = projection(ctx, 4, {0, 1, 2});
  Value max = generic(
      b, lse,
      filledTensor(b, rowShape, -std::numeric_limits<double>::infinity()),
      {lse4, row4}, 4, {3}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        linalg::YieldOp::create(ib, ValueRange{fastMax(ib, a[0], a[1])});
      })[0];
  Value den = generic(
      b, ValueRange{lse, max}, filledTensor(b, rowShape, 0.0),
      {lse4, row4, row4}, 4, {3}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value e =
            math::ExpOp::create(ib, arith::SubFOp::create(ib, a[0], a[1]));
        linalg::YieldOp::create(ib,
                                ValueRange{arith::AddFOp::create(ib, a[2], e)});
      })[0];
  // Once per (b, h, r, i), not once per element of D.
  return generic(
      b, ValueRange{lse, max, den}, emptyTensor(b, s, b.getF32Type()),
      {identity(ctx, 4), projection(ctx, 4, {0, 1, 3}),
       projection(ctx, 4, {0, 1, 3}), identity(ctx, 4)},
      4, {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value e =
            math::ExpOp::create(ib, arith::SubFOp::create(ib, a[0], a[1]));
        linalg::YieldOp::create(ib,
                                ValueRange{arith::DivFOp::create(ib, e, a[2])});
      })[0];
}

Value lowering::zeroBuffer(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape) {
  Value buffer = allocBuffer(b, RankedTensorType::get(shape, b.getF32Type()));
  linalg::FillOp::create(b, ValueRange{f32Const(b, 0.0)}, ValueRange{buffer});
  return buffer;
}
