//===- AttentionBlocks.h - Pieces shared by attention blocks -----*- C++
//-*-===//
//
// The forward and backward attention lowerings both walk (query chunk,
// window of key chunks) blocks over memrefs: they gather rows into small
// scratch buffers, normalize shared-QK keys and count duplicate pairs the
// same way, so the backward recomputes exactly the forward's scores.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_LIB_CONVERSION_REFORMERTOLINALG_ATTENTIONBLOCKS_H
#define REFORMER_LIB_CONVERSION_REFORMERTOLINALG_ATTENTIONBLOCKS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::reformer::lowering {

/// The block code's vector width is `lanes` f32 elements: 16 (one AVX-512
/// register) on the CPU; a GPU thread wants short vectors, since each lane
/// is a register of its own and 16 × 16 tiles would spill.

/// Per-block scratch on the heap: a parallel loop run serially keeps no
/// allocation scope per iteration, so stack scratch would pile up. The
/// deallocation pipeline frees it at the end of the block.
Value scratch(ImplicitLocOpBuilder &b, ArrayRef<int64_t> shape, Type type);

/// An index as i32.
Value i32(ImplicitLocOpBuilder &b, Value index);

/// Copies row `src[srcPrefix…, :]` (D elements, widened to f32) into
/// `dst[dstPrefix…, :]`, `lanes` at a time when D allows; rows of a key
/// that does not exist (`exists` false) become zeros.
void copyRow(ImplicitLocOpBuilder &b, Value src, ValueRange srcPrefix,
             Value dst, ValueRange dstPrefix, int64_t dim, Value exists,
             int64_t lanes);

/// `(a mod n)` for a possibly negative `a` and positive constant `n`.
Value positiveMod(ImplicitLocOpBuilder &b, Value a, int64_t n);

/// `1 / sqrt(mean(x²) + eps) / sqrt(D)` of row u of `rows`, into
/// `invNorm[u]`: the scale that turns a shared-QK row into its key.
void storeInverseNorm(ImplicitLocOpBuilder &b, Value rows, Value u,
                      Value invNorm, int64_t d, int64_t lanes);

/// `dst = srcᵀ` for f32 scratch buffers `src` [n, m] and `dst` [m, n]: in
/// lanes × lanes register tiles when both sizes allow (element-wise transposed
/// stores are slow scatters), else a linalg.transpose.
void transposeBlock(ImplicitLocOpBuilder &b, Value src, Value dst,
                    int64_t lanes);

/// `dst[dstPrefix…, :] += scale · src[srcPrefix…, :]` over `dim` f32
/// elements, `lanes` at a time when `dim` allows.
void addRow(ImplicitLocOpBuilder &b, Value src, ValueRange srcPrefix, Value dst,
            ValueRange dstPrefix, int64_t dim, double scale, int64_t lanes);

/// Local attention's key u of key chunk `kc` (unwrapped): its position and
/// whether it exists (chunks outside the sequence do not; no wrap-around).
std::pair<Value, Value> localKeyPosition(ImplicitLocOpBuilder &b, Value kc,
                                         Value u, int64_t chunk,
                                         int64_t numChunks);

/// `−log N_ij` of LSH duplicate correction: N_ij counts the (query copy, key
/// copy) windows, over all rounds, in which positions i and j meet.
struct DuplicateCount {
  Value inverse; ///< [B, H, R, L] sorted slot of each position.
  int64_t rounds, len, chunk, numChunks, before, after;
  Value score(ImplicitLocOpBuilder &b, Value batch, Value head, Value i,
              Value j) const;
};

/// Outlines an attention's blocks for a target pass: a private function of
/// `args` (buffers) named `<caller>_<kind>_<n>`, tagged with the block
/// parameters `params` under `attrName`, whose body `body` builds from the
/// function's arguments; `b` calls it in place of the blocks.
void outlineBlocks(PatternRewriter &rewriter, ImplicitLocOpBuilder &b,
                   Operation *op, StringRef kind, ValueRange args,
                   StringRef attrName, ArrayRef<NamedAttribute> params,
                   function_ref<void(ImplicitLocOpBuilder &, ValueRange)> body);

/// The window parameters every outlined attention records.
SmallVector<NamedAttribute> windowParams(Builder &b, int64_t chunk,
                                         int64_t before, int64_t after,
                                         bool causal);

} // namespace mlir::reformer::lowering

#endif // REFORMER_LIB_CONVERSION_REFORMERTOLINALG_ATTENTIONBLOCKS_H
