//===- ShapeChecks.cpp - Shape checks shared by the op verifiers ----------===//

#include "ShapeChecks.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

std::string reformer::detail::formatShape(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << '[';
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (isDynamic(d))
      os << '?';
    else
      os << d;
  });
  os << ']';
  return s;
}

LogicalResult reformer::detail::verifyShape(Operation *op, StringRef what,
                                            Type type,
                                            ArrayRef<int64_t> expected) {
  auto shaped = cast<ShapedType>(type);
  ArrayRef<int64_t> actual = shaped.getShape();
  bool ok = actual.size() == expected.size();
  for (size_t i = 0; ok && i < actual.size(); ++i)
    ok = isDynamic(actual[i]) || isDynamic(expected[i]) ||
         actual[i] == expected[i];
  if (ok)
    return success();
  return op->emitOpError() << "expects " << what << " of shape "
                           << formatShape(expected) << ", got "
                           << formatShape(actual);
}

LogicalResult reformer::detail::verifyElementType(Operation *op, StringRef what,
                                                  Type type, Type expected) {
  Type actual = cast<ShapedType>(type).getElementType();
  if (actual == expected)
    return success();
  return op->emitOpError() << "expects " << what << " with element type "
                           << expected << ", got " << actual;
}

LogicalResult reformer::detail::verifyChunking(Operation *op, int64_t seqLen,
                                               int64_t sortedLen,
                                               int64_t chunkLen,
                                               int64_t chunksBefore,
                                               int64_t chunksAfter) {
  if (chunkLen <= 0)
    return op->emitOpError()
           << "expects a positive chunk_len, got " << chunkLen;
  if (chunksBefore < 0 || chunksAfter < 0)
    return op->emitOpError()
           << "expects non-negative chunks_before and chunks_after, got "
           << chunksBefore << " and " << chunksAfter;
  if (isDynamic(seqLen))
    return success();
  if (seqLen % chunkLen != 0) {
    int64_t padded = (seqLen + chunkLen - 1) / chunkLen * chunkLen;
    return op->emitOpError()
           << "sequence length " << seqLen << " is not a multiple of chunk_len "
           << chunkLen << "; pad it to " << padded << " and mask the padding";
  }
  if (sortedLen <= 0)
    return success();
  int64_t window = chunksBefore + 1 + chunksAfter;
  int64_t numChunks = sortedLen / chunkLen;
  if (window > numChunks)
    return op->emitOpError()
           << "attention window of " << window
           << " chunks (chunks_before + 1 + chunks_after) exceeds the "
           << numChunks
           << " chunks of the sorted sequence (n_hashes * L / chunk_len)";
  return success();
}

LogicalResult reformer::detail::verifyBucketFactors(Operation *op,
                                                    ArrayRef<int64_t> factors) {
  if (factors.empty())
    return op->emitOpError("expects n_buckets to have at least one factor");
  for (int64_t f : factors)
    if (f < 2 || f % 2 != 0)
      return op->emitOpError()
             << "expects every n_buckets factor to be even and at least 2, "
                "got "
             << f;
  return success();
}
