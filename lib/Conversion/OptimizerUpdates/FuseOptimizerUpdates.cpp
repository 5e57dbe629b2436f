//===- FuseOptimizerUpdates.cpp - The rf-fuse-optimizer-updates pass ------===//
//
// A training step updates each parameter with its own elementwise
// linalg.generic, which the GPU target would launch as one small kernel per
// parameter. This pass merges them into one scf.parallel over every
// element: an iteration picks its update with a binary tree of comparisons
// on the running offsets, then runs that update's body on one element.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include <functional>
#include <numeric>

namespace mlir::reformer {
#define GEN_PASS_DEF_RFFUSEOPTIMIZERUPDATES
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

/// The buffer `v` views: an allocation, a global, a function argument or
/// a kernel's shared or private memory, or null when it comes from anything
/// else (and may alias anything).
Value bufferOf(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>())
    v = view.getViewSource();
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    Operation *owner = arg.getOwner()->getParentOp();
    if (isa<FunctionOpInterface>(owner) && arg.getOwner()->isEntryBlock())
      return v;
    auto launch = dyn_cast<gpu::LaunchOp>(owner);
    if (launch && (llvm::is_contained(launch.getWorkgroupAttributions(), arg) ||
                   llvm::is_contained(launch.getPrivateAttributions(), arg)))
      return v;
    return Value();
  }
  Operation *def = v.getDefiningOp();
  return isa<memref::AllocOp, memref::AllocaOp, memref::GetGlobalOp>(def)
             ? v
             : Value();
}

/// The buffers an op (and everything nested in it) reads and writes; a null
/// entry stands for a buffer that could be any.
struct Accesses {
  DenseSet<Value> reads, writes;

  void add(Value memref, bool write) {
    (write ? writes : reads).insert(bufferOf(memref));
  }

  static Accesses of(Operation *root) {
    Accesses a;
    root->walk([&](Operation *op) {
      auto effects = dyn_cast<MemoryEffectOpInterface>(op);
      if (!effects && op->hasTrait<OpTrait::HasRecursiveMemoryEffects>())
        return; // its nested ops are visited
      // Unknown effects (a call), or a pointer that escapes the buffer:
      // every buffer operand is read and written.
      if (!effects || isa<memref::ExtractAlignedPointerAsIndexOp>(op)) {
        for (Value operand : op->getOperands())
          if (isa<BaseMemRefType>(operand.getType())) {
            a.add(operand, false);
            a.add(operand, true);
          }
        return;
      }
      SmallVector<MemoryEffects::EffectInstance> instances;
      effects.getEffects(instances);
      for (MemoryEffects::EffectInstance &effect : instances) {
        Value value = effect.getValue();
        if (value && !isa<BaseMemRefType>(value.getType()))
          continue; // e.g. an allocation's result
        bool write = !isa<MemoryEffects::Read>(effect.getEffect());
        if (!value) {
          a.reads.insert(Value());
          if (write)
            a.writes.insert(Value());
          continue;
        }
        a.add(value, write);
      }
    });
    return a;
  }

  /// Whether moving an op that accesses `earlier` past one with these
  /// accesses could change what either reads or leaves in memory.
  bool conflictsWith(const Accesses &earlier) const {
    auto meet = [](const DenseSet<Value> &x, const DenseSet<Value> &y) {
      if ((x.contains(Value()) && !y.empty()) ||
          (y.contains(Value()) && !x.empty()))
        return true;
      return llvm::any_of(x, [&](Value v) { return y.contains(v); });
    };
    return meet(writes, earlier.reads) || meet(writes, earlier.writes) ||
           meet(reads, earlier.writes);
  }
};

/// Kernel-argument bytes of a value the merged loop captures, as
/// convert-gpu-to-nvvm passes it: a memref's descriptor is two pointers,
/// an offset, and a size and a stride per dimension (of the buffer itself:
/// rf-map-loops-to-gpu moves the one-dimensional views into the kernel); a
/// scalar is taken as a 0-D memref, which is what a host load of a scalar
/// becomes when it is moved into the kernel.
int64_t argumentBytes(Value v) {
  if (auto type = dyn_cast<MemRefType>(v.getType()))
    return 8 * (3 + 2 * type.getRank());
  return 8 * 3;
}

/// Whether `op` is an update the pass can merge.
bool isMergeable(linalg::GenericOp op) {
  if (!op->hasAttr(reformer::kOptimizerUpdateAttrName) ||
      !op.hasPureBufferSemantics() || op.hasIndexSemantics() ||
      !isa<func::FuncOp>(op->getParentOp()) ||
      op.getNumParallelLoops() != op.getNumLoops() || op.getNumLoops() == 0)
    return false;
  if (!llvm::all_of(op.getIndexingMapsArray(),
                    [](AffineMap map) { return map.isIdentity(); }))
    return false;
  for (Value operand : op->getOperands()) {
    auto type = dyn_cast<MemRefType>(operand.getType());
    if (!type || !type.hasStaticShape() || !type.getLayout().isIdentity() ||
        !bufferOf(operand))
      return false;
  }
  return true;
}

/// The values an update's body uses from above (the learning rate, the
/// step's bias corrections, a clipping scale).
SetVector<Value> capturedValues(linalg::GenericOp op) {
  SetVector<Value> captured;
  op.getBody()->walk([&](Operation *nested) {
    for (Value operand : nested->getOperands())
      if (!op->isAncestor(operand.getParentBlock()->getParentOp()))
        captured.insert(operand);
  });
  return captured;
}

int64_t elementCount(linalg::GenericOp op) {
  int64_t count = 1;
  for (int64_t range : op.getStaticLoopRanges())
    count *= range;
  return count;
}

/// Emits one scf.parallel for `group` before `at`.
void mergeGroup(ArrayRef<linalg::GenericOp> group, Operation *at) {
  OpBuilder b(at);
  // The kernel takes the name of the loop (rf-name-kernels).
  Location loc =
      NameLoc::get(b.getStringAttr("optimizer_update"), at->getLoc());
  DenseMap<Value, Value> flat;
  auto flatten = [&](Value v) {
    auto type = cast<MemRefType>(v.getType());
    if (type.getRank() == 1)
      return v;
    Value &slot = flat[v];
    if (!slot) {
      ReassociationIndices all(type.getRank());
      std::iota(all.begin(), all.end(), 0);
      slot = memref::CollapseShapeOp::create(
          b, loc, v, ArrayRef<ReassociationIndices>{all});
    }
    return slot;
  };
  SmallVector<int64_t> offsets = {0};
  for (linalg::GenericOp op : group) {
    for (Value operand : op->getOperands())
      flatten(operand);
    offsets.push_back(offsets.back() + elementCount(op));
  }
  auto index = [&](OpBuilder &ib, int64_t value) -> Value {
    return arith::ConstantIndexOp::create(ib, loc, value);
  };
  auto loop = scf::ParallelOp::create(b, loc, index(b, 0),
                                      index(b, offsets.back()), index(b, 1));
  Value i = loop.getInductionVars()[0];

  // One update on element `i - offsets[k]` of its buffers.
  auto emitUpdate = [&](OpBuilder &ib, unsigned k) {
    linalg::GenericOp op = group[k];
    Value j = k == 0 ? i
                     : arith::SubIOp::create(ib, loc, i, index(ib, offsets[k]))
                           .getResult();
    IRMapping map;
    for (OpOperand &operand : op->getOpOperands()) {
      BlockArgument arg = op.getMatchingBlockArgument(&operand);
      if (!arg.use_empty())
        map.map(arg, memref::LoadOp::create(ib, loc, flatten(operand.get()),
                                            ValueRange{j}));
    }
    for (Operation &nested : op.getBody()->without_terminator())
      ib.clone(nested, map);
    auto yield = cast<linalg::YieldOp>(op.getBody()->getTerminator());
    for (auto [value, out] : llvm::zip(yield.getValues(), op.getDpsInits()))
      memref::StoreOp::create(ib, loc, map.lookupOrDefault(value), flatten(out),
                              ValueRange{j});
  };
  // Updates [lo, hi): halve on the offset between them.
  std::function<void(OpBuilder &, unsigned, unsigned)> dispatch =
      [&](OpBuilder &ib, unsigned lo, unsigned hi) {
        if (hi - lo == 1)
          return emitUpdate(ib, lo);
        unsigned mid = (lo + hi) / 2;
        Value before = arith::CmpIOp::create(ib, loc, arith::CmpIPredicate::ult,
                                             i, index(ib, offsets[mid]));
        auto branch = scf::IfOp::create(ib, loc, before, /*withElse=*/true);
        OpBuilder thenBuilder = branch.getThenBodyBuilder();
        dispatch(thenBuilder, lo, mid);
        OpBuilder elseBuilder = branch.getElseBodyBuilder();
        dispatch(elseBuilder, mid, hi);
      };
  OpBuilder body = OpBuilder::atBlockTerminator(loop.getBody());
  dispatch(body, 0, group.size());
}

struct RfFuseOptimizerUpdatesPass
    : reformer::impl::RfFuseOptimizerUpdatesBase<RfFuseOptimizerUpdatesPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    SmallVector<linalg::GenericOp> updates;
    for (Operation &op : func.getBody().getOps())
      if (auto generic = dyn_cast<linalg::GenericOp>(op))
        if (isMergeable(generic))
          updates.push_back(generic);
    if (updates.size() < 2)
      return;

    // Which updates may move down to the last one: nothing in between may
    // touch their buffers in a way the move would reorder. A buffer freed
    // in between (a gradient, once its update has read it) is freed after
    // the merged loop instead.
    Operation *last = updates.back();
    DenseMap<Operation *, Accesses> accesses;
    auto accessesOf = [&](Operation *op) -> const Accesses & {
      auto it = accesses.find(op);
      if (it == accesses.end())
        it = accesses.try_emplace(op, Accesses::of(op)).first;
      return it->second;
    };
    SmallVector<linalg::GenericOp> movable;
    DenseMap<Operation *, SmallVector<Operation *>> deferredFrees;
    for (linalg::GenericOp update : updates) {
      Accesses own = accessesOf(update); // a copy: the map may grow
      bool blocked = false;
      SmallVector<Operation *> frees;
      for (Operation *op = update->getNextNode(); update != last && op != last;
           op = op->getNextNode()) {
        if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
          Value buffer = bufferOf(dealloc.getMemref());
          if (buffer &&
              (own.reads.contains(buffer) || own.writes.contains(buffer))) {
            frees.push_back(op);
            continue;
          }
        }
        if ((blocked = accessesOf(op).conflictsWith(own)))
          break;
      }
      if (blocked)
        continue;
      movable.push_back(update);
      deferredFrees[update] = std::move(frees);
    }

    // Groups in order, each within the kernel-argument budget.
    SmallVector<SmallVector<linalg::GenericOp>> groups(1);
    DenseSet<Value> arguments;
    int64_t bytes = 0;
    for (linalg::GenericOp update : movable) {
      SetVector<Value> values = capturedValues(update);
      values.insert(update->getOperands().begin(), update->getOperands().end());
      int64_t added = 0;
      for (Value v : values)
        if (!arguments.contains(v))
          added += argumentBytes(v);
      if (!groups.back().empty() && bytes + added > maxKernelParamBytes) {
        groups.emplace_back();
        arguments.clear();
        bytes = 0;
        added = 0;
        for (Value v : values)
          added += argumentBytes(v);
      }
      groups.back().push_back(update);
      arguments.insert(values.begin(), values.end());
      bytes += added;
    }

    SmallVector<linalg::GenericOp> merged;
    for (ArrayRef<linalg::GenericOp> group : groups)
      if (group.size() > 1) {
        mergeGroup(group, last);
        llvm::append_range(merged, group);
      }
    for (linalg::GenericOp update : merged)
      for (Operation *free : deferredFrees[update])
        free->moveBefore(last);
    for (linalg::GenericOp update : merged)
      update->erase();
  }
};

} // namespace
