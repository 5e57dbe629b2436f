//===- AttentionKernels.h - Fused attention kernels' shared pieces -*- C++
//-*-===//
//
// The fused attention kernels of rf-lower-attention-to-mma each replace the
// body of one outlined attention function. They share the window
// parameters of the function's attribute, the shared-memory padding and the
// launch (or its CPU emulation), declared here.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_LIB_CONVERSION_ATTENTIONTOMMA_ATTENTIONKERNELS_H
#define REFORMER_LIB_CONVERSION_ATTENTIONTOMMA_ATTENTIONKERNELS_H

#include "LaneBuilder.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <optional>

namespace mlir::reformer {

constexpr int64_t kWarpSize = 32, kRowsPerWarp = 16, kMaxKeyTile = 64;
/// Shared-memory rows are padded by 4 words: the 32 lanes' fragment reads
/// (8 rows × 4 consecutive words) then fall in 32 distinct banks.
constexpr int64_t kPadWords = 4;
constexpr int64_t kSharedLimitBytes = 48 * 1024;

/// Whether `value` is a memref of static shape, offset and strides with a
/// unit innermost stride.
bool hasStaticStrides(Value value);

/// The window of an outlined attention function's attribute.
struct WindowParams {
  int64_t chunk, before, after;
  bool causal;
  double maskedScore;
  double selfScore = 0, keyNormEps = 0; ///< LSH only.
};
/// The parameters in `params`, or nullopt when one is missing (`lsh`: the
/// self score and key normalization too).
std::optional<WindowParams> parseWindowParams(DictionaryAttr params, bool lsh);

/// The sizes of an attention: rows [B, H, L, D], and R rounds of sorted
/// positions [B, H, R, L] (1 without a permutation).
struct AttentionShape {
  int64_t batch, heads, rounds, len, dim;
};
/// The sizes of `rows` and `perm` (may be null), or nullopt when their
/// ranks are not 4.
std::optional<AttentionShape> attentionShape(Value rows, Value perm);

/// Shape and element type of each shared-memory buffer of a kernel.
using SharedBuffers = SmallVector<std::pair<SmallVector<int64_t>, Type>>;
/// The code one thread runs: block ids (x, y, z), thread id, the shared
/// buffers.
using KernelBody = function_ref<void(LaneBuilder &, ValueRange blockIds,
                                     Value tid, ValueRange shared)>;

/// Appends at `b` (in `function`) a gpu.launch of `grid` (x, y, z) blocks
/// of `threads` threads running `body` or, with `emulate`, a CPU emulation
/// of each block (LaneBuilder). The kernel is named `<function>_<name>`.
void appendKernel(OpBuilder &b, func::FuncOp function, StringRef name,
                  ArrayRef<int64_t> grid, int64_t threads,
                  const SharedBuffers &shared, bool emulate, KernelBody body);
/// Erases the body of `function`; a builder at its (empty) end.
OpBuilder clearBody(func::FuncOp function);
/// Replaces the body of `function` with one kernel (appendKernel, named
/// `<function>_mma`).
void emitKernel(func::FuncOp function, ArrayRef<int64_t> grid, int64_t threads,
                const SharedBuffers &shared, bool emulate, KernelBody body);

/// Whether the fused forward takes a local attention of `queries`
/// [B, H, L, D] and `window`.
bool localForwardFits(Value queries, const WindowParams &window);
/// Appends at `b` the fused forward of a local attention whose keys
/// arrive unscaled (`keyScale` applies as they are gathered), writing
/// `out` [B, H, L, D] and the log-sum-exps `lse` [B, H, L]: the statistics
/// a gradient kernel needs. The shapes must fit (localForwardFits).
void appendLocalForward(OpBuilder &b, func::FuncOp function, StringRef name,
                        Value queries, Value keys, Value values, Value mask,
                        Value out, Value lse, const WindowParams &window,
                        double keyScale, bool emulate);

/// Replace the body of an outlined LSH or local attention forward
/// (gradient) with its fused kernel; false when the function's shapes are
/// not ones the kernel takes (the body stays).
bool lowerAttentionForward(func::FuncOp function, bool emulate);
bool lowerAttentionGrad(func::FuncOp function, bool emulate);

} // namespace mlir::reformer

#endif // REFORMER_LIB_CONVERSION_ATTENTIONTOMMA_ATTENTIONKERNELS_H
