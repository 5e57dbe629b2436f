//===- ExpandStridedCopies.cpp - The rf-expand-strided-copies pass --------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFEXPANDSTRIDEDCOPIES
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

bool isContiguous(Value memref) {
  auto type = cast<MemRefType>(memref.getType());
  return type.getLayout().isIdentity() ||
         memref::isStaticShapeAndContiguousRowMajor(type);
}

/// Bytes `copy` moves, or -1 when its shape is dynamic.
int64_t bytesOf(memref::CopyOp copy) {
  auto type = cast<MemRefType>(copy.getSource().getType());
  if (!type.hasStaticShape() || !type.getElementType().isIntOrFloat())
    return -1;
  return type.getNumElements() * type.getElementTypeBitWidth() / 8;
}

struct RfExpandStridedCopiesPass
    : reformer::impl::RfExpandStridedCopiesBase<RfExpandStridedCopiesPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<memref::CopyOp> copies;
    getOperation()->walk([&](memref::CopyOp copy) {
      bool strided =
          !isContiguous(copy.getSource()) || !isContiguous(copy.getTarget());
      bool large = parallelBytes > 0 && bytesOf(copy) >= parallelBytes;
      if (strided || large)
        copies.push_back(copy);
    });
    for (memref::CopyOp copy : copies) {
      OpBuilder b(copy);
      linalg::CopyOp::create(b, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      copy.erase();
    }
  }
};

} // namespace
