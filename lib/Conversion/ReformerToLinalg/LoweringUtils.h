//===- LoweringUtils.h - Helpers shared by the reformer lowerings -*- C++ -*-=//
//
// Small builders the per-op lowerings share: f32 compute values, constants,
// empty and zero tensors, linalg.generic shorthands and memref loops.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_LIB_CONVERSION_REFORMERTOLINALG_LOWERINGUTILS_H
#define REFORMER_LIB_CONVERSION_REFORMERTOLINALG_LOWERINGUTILS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::reformer::lowering {

/// Scores of masked pairs (REFORMER-SEMANTICS: added, not substituted).
constexpr double kMaskedScore = -1e9;
constexpr double kSelfScore = -1e5;
/// Epsilon of the LSH key normalization `x / sqrt(mean(x²) + eps)`.
constexpr double kKeyNormEps = 1e-6;

/// Every op computes in f32 whatever its storage type; narrower floats are
/// widened on read and rounded once on write.
Value toF32(ImplicitLocOpBuilder &b, Value v);
Value fromF32(ImplicitLocOpBuilder &b, Value v, Type type);

Value f32Const(ImplicitLocOpBuilder &b, double value);
Value indexConst(ImplicitLocOpBuilder &b, int64_t value);

/// `scale · x` elementwise as an f32 tensor (x widened if narrower); a
/// no-op for an f32 tensor and scale 1.
Value scaledF32Tensor(ImplicitLocOpBuilder &b, Value tensor,
                      double scale = 1.0);

/// `tensor.empty` of the given shape and element type.
Value emptyTensor(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                  Type elementType);
/// A tensor filled with `value` (f32).
Value filledTensor(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape,
                   double value);

using GenericBody = function_ref<void(ImplicitLocOpBuilder &, ValueRange)>;

/// `linalg.generic` over `numDims` loops; `reductionDims` are reductions,
/// the rest parallel. The body gets the block arguments and yields itself.
SmallVector<Value> generic(ImplicitLocOpBuilder &b, ValueRange inputs,
                           ValueRange outputs, ArrayRef<AffineMap> maps,
                           unsigned numDims, ArrayRef<unsigned> reductionDims,
                           GenericBody body);

/// Map of a tensor indexed by a subset of the loop dimensions, in order.
AffineMap projection(MLIRContext *ctx, unsigned numDims,
                     ArrayRef<unsigned> dims);
AffineMap identity(MLIRContext *ctx, unsigned numDims);
/// Every loop dimension but the last (the rows of a row-wise op).
SmallVector<unsigned> leadingDims(unsigned rank);

/// `linalg.index` for every loop of the enclosing generic.
SmallVector<Value> loopIndices(ImplicitLocOpBuilder &b, unsigned numDims);

/// `scf.for` from `lb` to `ub` by `step` (all constants) with no results.
void forLoop(ImplicitLocOpBuilder &b, Value lb, Value ub, int64_t step,
             function_ref<void(ImplicitLocOpBuilder &, Value)> body);

/// Marks each buffer read made by toBuffer (distinct values, see there).
constexpr llvm::StringLiteral kReadSiteAttrName = "reformer.read_site";

/// The memref under a tensor operand, for lowerings written as loops.
Value toBuffer(ImplicitLocOpBuilder &b, Value tensor);
/// A new buffer for a result, and the tensor that takes ownership of it.
Value allocBuffer(ImplicitLocOpBuilder &b, RankedTensorType type);
/// The [B, H, L, D] buffer of `heads`, read-only. When `heads` splits a
/// [B, L, H·D] tensor into heads (reformer.split_heads, or the transpose it
/// lowers to), a strided view of that tensor's buffer: the head transpose
/// is never materialized (rows of D stay contiguous).
Value headsBuffer(ImplicitLocOpBuilder &b, Value heads);
Value toTensor(ImplicitLocOpBuilder &b, Value buffer);
/// A new f32 buffer of `shape`, zeroed: an accumulator for scatter-adds.
Value zeroBuffer(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape);

/// Fast-math flags of max reductions over scores: no NaNs (a NaN score is
/// garbage whatever its max) and no signed zeros, so they lower to plain
/// vmaxps instead of NaN-propagating compare-and-blend sequences; and
/// reassociation (max is associative), so reductions become trees.
arith::FastMathFlags maxFlags();
/// max(x, y) with those flags.
Value fastMax(ImplicitLocOpBuilder &b, Value x, Value y);

/// `[rows, K] × [K, N]` in f32 (mixed-precision inputs are widened by
/// linalg.matmul); the result is the f32 accumulator.
Value matmul(ImplicitLocOpBuilder &b, Value lhs, Value rhs, int64_t rows,
             int64_t cols);
/// Collapses `[d0, …, dk, K]` to `[d0·…·dk, K]`, and back.
Value collapseRows(ImplicitLocOpBuilder &b, Value x);
Value expandRows(ImplicitLocOpBuilder &b, Value x, RankedTensorType resultType);

/// Per-row mean and 1/sqrt(var + eps) over the last dimension of `input`
/// (f32 tensors of its leading shape): the forward and backward of
/// layer_norm share them.
std::pair<Value, Value> layerNormStatistics(ImplicitLocOpBuilder &b,
                                            Value input, double eps);

/// Row max and Σ exp(x − max) over the last dimension of `[B, L, V]`
/// logits (f32 `[B, L]`): the loss and its gradient share them.
std::pair<Value, Value> rowMaxAndSumExp(ImplicitLocOpBuilder &b, Value logits);

/// The LSH round weights `exp(lse_r − logsumexp_r lse_r)` of `[B, H, R, L]`
/// per-round log-sum-exps, by max-subtraction and division so they sum to
/// one even where every round's lse is near −1e5 (tokens that could attend
/// only to themselves). f32 `[B, H, R, L]`.
Value roundWeights(ImplicitLocOpBuilder &b, Value lse);

/// Floating-point values of the activation functions of chunked_ffn.
Value relu(ImplicitLocOpBuilder &b, Value x);
Value gelu(ImplicitLocOpBuilder &b, Value x);
Value geluTanh(ImplicitLocOpBuilder &b, Value x);
Value silu(ImplicitLocOpBuilder &b, Value x);
/// Their derivatives.
Value reluGrad(ImplicitLocOpBuilder &b, Value x);
Value geluGrad(ImplicitLocOpBuilder &b, Value x);
Value geluTanhGrad(ImplicitLocOpBuilder &b, Value x);
Value siluGrad(ImplicitLocOpBuilder &b, Value x);

} // namespace mlir::reformer::lowering

#endif // REFORMER_LIB_CONVERSION_REFORMERTOLINALG_LOWERINGUTILS_H
