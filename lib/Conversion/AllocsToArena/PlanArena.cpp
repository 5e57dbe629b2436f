//===- PlanArena.cpp - The rf-plan-arena pass -----------------------------===//
//
// Buffers of a bufferized function have lifetimes the compiler knows: from
// their alloc to their dealloc, in program order. Placing them in one arena
// at planned offsets turns hundreds of allocations per call (each a pool
// lookup, or a cudaMalloc without a pool) into one, and lets buffers that
// are never live together share bytes.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/Support/MathExtras.h"

#include <map>

namespace mlir::reformer {
#define GEN_PASS_DEF_RFPLANARENA
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

constexpr int64_t kMinAlignment = 64;

/// One buffer to place: live from top-level op `first` to `last`
/// (inclusive, positions in the function's block).
struct Buffer {
  memref::AllocOp alloc;
  memref::DeallocOp dealloc;
  int64_t bytes, alignment, first, last;
  int64_t offset = -1;
};

/// Bytes of a statically shaped buffer of ints, floats or indices, or -1.
int64_t bufferBytes(MemRefType type) {
  Type element = type.getElementType();
  int64_t elementBytes;
  if (element.isIndex())
    elementBytes = 8; // 64-bit index on both targets.
  else if (element.isIntOrFloat())
    elementBytes = llvm::divideCeil(element.getIntOrFloatBitWidth(), 8);
  else
    return -1;
  return type.getNumElements() * elementBytes;
}

/// The op of `block` that holds `op`, if every op between them is an
/// scf.for or scf.if (their bodies run on the calling thread, one
/// iteration at a time), else null.
Operation *serialAncestorIn(Block *block, Operation *op) {
  while (op && op->getBlock() != block) {
    op = op->getParentOp();
    if (!op || !isa<scf::ForOp, scf::IfOp>(op))
      return nullptr;
  }
  return op;
}

/// Greedy by size: largest buffer first, each at the lowest aligned offset
/// that no buffer with an overlapping lifetime occupies. Returns the
/// arena's size.
int64_t assignOffsets(MutableArrayRef<Buffer> buffers) {
  SmallVector<Buffer *> order;
  for (Buffer &buffer : buffers)
    order.push_back(&buffer);
  llvm::stable_sort(order, [](const Buffer *a, const Buffer *b) {
    return a->bytes > b->bytes;
  });
  SmallVector<Buffer *> placed;
  int64_t size = 0;
  for (Buffer *buffer : order) {
    SmallVector<Buffer *> conflicts;
    for (Buffer *other : placed)
      if (other->first <= buffer->last && buffer->first <= other->last)
        conflicts.push_back(other);
    llvm::sort(conflicts, [](const Buffer *a, const Buffer *b) {
      return a->offset < b->offset;
    });
    int64_t offset = 0;
    for (Buffer *other : conflicts) {
      if (offset + buffer->bytes <= other->offset)
        break;
      offset =
          std::max<int64_t>(offset, llvm::alignTo(other->offset + other->bytes,
                                                  buffer->alignment));
    }
    buffer->offset = offset;
    size = std::max(size, offset + buffer->bytes);
    placed.push_back(buffer);
  }
  return size;
}

struct RfPlanArenaPass : reformer::impl::RfPlanArenaBase<RfPlanArenaPass> {
  using Base::Base;
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal() || !func.getBody().hasOneBlock())
      return;
    Block &body = func.getBody().front();
    DenseMap<Operation *, int64_t> position;
    for (auto [index, op] : llvm::enumerate(body))
      position[&op] = index;

    SmallVector<Buffer> buffers;
    func.walk([&](memref::AllocOp alloc) {
      MemRefType type = alloc.getType();
      if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
          type.getMemorySpace())
        return;
      int64_t bytes = bufferBytes(type);
      Operation *holder = serialAncestorIn(&body, alloc);
      if (bytes <= 0 || !holder)
        return;
      memref::DeallocOp dealloc;
      for (Operation *user : alloc->getUsers())
        if (auto d = dyn_cast<memref::DeallocOp>(user)) {
          if (dealloc || d->getBlock() != alloc->getBlock())
            return;
          dealloc = d;
        }
      if (!dealloc)
        return;
      int64_t first = position.lookup(holder);
      int64_t last = holder == alloc.getOperation()
                         ? position.lookup(dealloc.getOperation())
                         : first;
      int64_t alignment =
          std::max<int64_t>(kMinAlignment, alloc.getAlignment().value_or(0));
      int64_t padded = llvm::alignTo(bytes, kMinAlignment);
      buffers.push_back({alloc, dealloc, padded, alignment, first, last});
    });
    if (buffers.empty())
      return;

    int64_t size = assignOffsets(buffers);
    std::map<int64_t, int64_t> delta; // live bytes change at each position
    for (const Buffer &buffer : buffers) {
      delta[buffer.first] += buffer.bytes;
      delta[buffer.last + 1] -= buffer.bytes;
    }
    int64_t live = 0, peak = 0;
    for (auto [at, change] : delta)
      peak = std::max(peak, live += change);

    int64_t arenaAlignment = kMinAlignment;
    for (const Buffer &buffer : buffers)
      arenaAlignment = std::max(arenaAlignment, buffer.alignment);
    OpBuilder b(&body, body.begin());
    Location loc = func.getLoc();
    auto arenaType = MemRefType::get({size}, b.getI8Type());
    Value arena = memref::AllocOp::create(b, loc, arenaType,
                                          b.getI64IntegerAttr(arenaAlignment));
    b.setInsertionPoint(body.getTerminator());
    memref::DeallocOp::create(b, loc, arena);

    int64_t total = 0;
    for (Buffer &buffer : buffers) {
      b.setInsertionPoint(buffer.alloc);
      Value offset = arith::ConstantIndexOp::create(b, buffer.alloc.getLoc(),
                                                    buffer.offset);
      Value view = memref::ViewOp::create(b, buffer.alloc.getLoc(),
                                          buffer.alloc.getType(), arena, offset,
                                          ValueRange{});
      buffer.dealloc.erase();
      buffer.alloc.replaceAllUsesWith(view);
      buffer.alloc.erase();
      total += buffer.bytes;
    }
    if (report)
      func.emitRemark() << "arena of " << size << " bytes for "
                        << buffers.size() << " buffers of " << total
                        << " bytes; at most " << peak << " bytes live at once";
  }
};

} // namespace
