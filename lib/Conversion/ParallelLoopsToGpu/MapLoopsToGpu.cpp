//===- MapLoopsToGpu.cpp - The rf-map-loops-to-gpu pass -------------------===//
//
// After bufferization the CPU pipeline's functions are host code with
// parallel loops. For the GPU every buffer access must happen in a kernel,
// because buffers live in device memory: this pass leaves the host only
// allocations, views, calls and loops around launches, and gives every
// parallel loop the mapping attributes convert-parallel-loops-to-gpu reads.
//
//===----------------------------------------------------------------------===//

#include "reformer/Conversion/Passes.h"

#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include <numeric>

namespace mlir::reformer {
#define GEN_PASS_DEF_RFMAPLOOPSTOGPU
#include "reformer/Conversion/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;

namespace {

bool containsParallelLoop(Operation *op) {
  return op
      ->walk([&](scf::ParallelOp loop) {
        return loop.getOperation() == op ? WalkResult::advance()
                                         : WalkResult::interrupt();
      })
      .wasInterrupted();
}

/// Whether `op` holds work that becomes kernels: parallel loops, or
/// launches built earlier (rf-lower-matmuls-to-mma).
bool containsDeviceWork(Operation *op) {
  return containsParallelLoop(op) || op->walk([](gpu::LaunchOp) {
                                         return WalkResult::interrupt();
                                       }).wasInterrupted();
}

/// Ops the host runs itself: they allocate, describe views, call other host
/// functions or launch work, and touch no buffer contents.
bool runsOnHost(Operation *op) {
  return isa<memref::AllocOp, memref::DeallocOp, func::CallOp, func::ReturnOp,
             scf::ParallelOp, scf::YieldOp, gpu::LaunchOp>(op) ||
         isa<ViewLikeOpInterface>(op) ||
         isa<memref::ExtractStridedMetadataOp>(op);
}

/// Whether `op` must run in a kernel: it reads or writes buffer contents.
bool touchesMemory(Operation *op) {
  if (runsOnHost(op))
    return false;
  if (op->getNumRegions() > 0)
    return !isMemoryEffectFree(op);
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  return !effects || !effects.hasNoEffect();
}

/// A function argument the function never writes (an input or parameter;
/// results are the arguments marked reformer.output).
bool isReadOnlyArgument(Value buffer) {
  auto arg = dyn_cast<BlockArgument>(buffer);
  if (!arg)
    return false;
  auto func = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
  return func && arg.getOwner() == &func.getBody().front() &&
         !func.getArgAttr(arg.getArgNumber(), "reformer.output");
}

/// Moves host loads of read-only scalars, and pure ops on them, into the
/// loops that use them: the value is then read inside each kernel instead
/// of on the host, where device memory cannot be read.
void sinkScalarReads(Block &block) {
  SmallVector<Operation *> ops;
  for (Operation &op : block)
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops)) {
    bool load = false;
    if (auto read = dyn_cast<memref::LoadOp>(op))
      load = isReadOnlyArgument(read.getMemRef());
    if (!load && !(isPure(op) && op->getNumRegions() == 0 &&
                   !op->hasTrait<OpTrait::ConstantLike>()))
      continue;
    if (op->use_empty() || llvm::any_of(op->getUsers(), [&](Operation *user) {
          return user->getBlock() == &block;
        }))
      continue;
    // Each use is nested in a later op's region: clone next to it.
    for (OpOperand &use : llvm::make_early_inc_range(op->getUses())) {
      OpBuilder b(use.getOwner());
      Operation *copy = b.clone(*op);
      use.set(copy->getResult(cast<OpResult>(use.get()).getResultNumber()));
    }
    op->erase();
  }
}

/// Wraps each run of memory-touching ops in `block` (with the pure ops that
/// consume their results) in a one-iteration scf.parallel. Fails when a
/// value computed by such a run is used by the host afterwards.
LogicalResult wrapSerialRuns(Block &block) {
  struct Run {
    SmallVector<Operation *> ops;
    /// Pure ops between the run's ops that do not depend on them: they stay
    /// on the host, before the kernel.
    SmallVector<Operation *> hoisted;
  };
  SmallVector<Run> runs;
  Run run;
  llvm::SmallPtrSet<Operation *, 16> inRun;
  auto usesRun = [&](Operation *op) {
    return llvm::any_of(op->getOperands(), [&](Value v) {
      Operation *def = v.getDefiningOp();
      return def && inRun.contains(def);
    });
  };
  auto close = [&] {
    if (!run.ops.empty())
      runs.push_back(std::move(run));
    run = Run();
    inRun.clear();
  };
  for (Operation &op : block) {
    bool serialHost = isa<scf::ForOp>(op) && containsDeviceWork(&op);
    bool pure = isPure(&op) && op.getNumRegions() == 0;
    if (!serialHost &&
        (touchesMemory(&op) || (!run.ops.empty() && pure && usesRun(&op)))) {
      run.ops.push_back(&op);
      inRun.insert(&op);
      continue;
    }
    if (!run.ops.empty() && pure && !runsOnHost(&op)) {
      run.hoisted.push_back(&op);
      continue;
    }
    close();
  }
  close();

  for (Run &r : runs) {
    SmallVector<Operation *> &ops = r.ops;
    for (Operation *op : r.hoisted)
      op->moveBefore(ops.front());
    llvm::SmallPtrSet<Operation *, 16> members(ops.begin(), ops.end());
    for (Operation *op : ops)
      for (Operation *user : op->getUsers())
        if (Operation *ancestor = block.findAncestorOpInBlock(*user);
            !ancestor || !members.contains(ancestor))
          return op->emitOpError("rf-map-loops-to-gpu: this value is "
                                 "computed in device memory and used by the "
                                 "host afterwards: ")
                 << *user;
    OpBuilder b(ops.front());
    Location loc = ops.front()->getLoc();
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    auto wrapper = scf::ParallelOp::create(b, loc, ValueRange{zero},
                                           ValueRange{one}, ValueRange{one});
    Operation *terminator = wrapper.getBody()->getTerminator();
    for (Operation *op : ops)
      op->moveBefore(terminator);
  }
  // Host loops around launches: their bodies get the same treatment.
  for (Operation &op : block)
    if (auto loop = dyn_cast<scf::ForOp>(op);
        loop && containsDeviceWork(loop)) {
      sinkScalarReads(*loop.getBody());
      if (failed(wrapSerialRuns(*loop.getBody())))
        return failure();
    }
  return success();
}

gpu::ParallelLoopDimMappingAttr dimMapping(MLIRContext *context,
                                           gpu::Processor processor) {
  AffineMap identity = AffineMap::getMultiDimIdentityMap(1, context);
  return gpu::ParallelLoopDimMappingAttr::get(context, processor, identity,
                                              identity);
}

/// Replaces a parallel loop nested in a kernel body by a serial loop nest:
/// the body then runs on one thread.
LogicalResult serialize(scf::ParallelOp loop) {
  if (!loop.getInitVals().empty())
    return loop.emitOpError("rf-map-loops-to-gpu: nested parallel "
                            "reductions are not supported");
  OpBuilder b(loop);
  scf::LoopNest nest =
      scf::buildLoopNest(b, loop.getLoc(), loop.getLowerBound(),
                         loop.getUpperBound(), loop.getStep());
  Block *target = nest.loops.back().getBody();
  Block *body = loop.getBody();
  for (auto [iv, serial] : llvm::zip(loop.getInductionVars(), nest.loops))
    iv.replaceAllUsesWith(serial.getInductionVar());
  body->getTerminator()->erase();
  target->getOperations().splice(target->getTerminator()->getIterator(),
                                 body->getOperations());
  loop.erase();
  return success();
}

/// Dimensions to blocks x, y, z in order; further ones run as loops.
LogicalResult mapToBlocks(scf::ParallelOp loop) {
  SmallVector<gpu::ParallelLoopDimMappingAttr> mapping;
  for (unsigned i = 0; i < loop.getNumLoops(); ++i)
    mapping.push_back(
        dimMapping(loop.getContext(), i < 3 ? static_cast<gpu::Processor>(i)
                                            : gpu::Processor::Sequential));
  return gpu::setMappingAttr(loop, mapping);
}

/// A loop without allocations or nested parallel loops: all dimensions
/// collapse into one, cut into tiles of `threads` (tiles → blocks,
/// iterations → threads), so consecutive threads touch consecutive
/// elements of row-major buffers.
LogicalResult mapPlainLoop(scf::ParallelOp loop, int64_t threads) {
  IRRewriter rewriter(loop.getContext());
  if (loop.getNumLoops() > 1) {
    rewriter.setInsertionPoint(loop);
    std::vector<std::vector<unsigned>> combined(1);
    combined[0].resize(loop.getNumLoops());
    std::iota(combined[0].begin(), combined[0].end(), 0);
    // collapseParallelLoops builds the new loop where the old one was and
    // erases the old one.
    Operation *before = loop->getPrevNode();
    Block *block = loop->getBlock();
    collapseParallelLoops(rewriter, loop, combined);
    Operation *next = before ? before->getNextNode() : &block->front();
    while (next && !isa<scf::ParallelOp>(next))
      next = next->getNextNode();
    if (!next)
      return failure();
    loop = cast<scf::ParallelOp>(next);
  }
  int64_t extent = 0;
  std::optional<int64_t> lb = getConstantIntValue(loop.getLowerBound()[0]),
                         ub = getConstantIntValue(loop.getUpperBound()[0]),
                         step = getConstantIntValue(loop.getStep()[0]);
  if (lb && ub && step && *step > 0)
    extent = llvm::divideCeil(*ub - *lb, *step);
  int64_t tile = threads;
  if (extent > 0 && extent < threads)
    tile = llvm::alignTo(extent, 32);
  MLIRContext *context = loop.getContext();
  // tileParallelLoop replaces `loop`.
  auto [outer, inner] = scf::tileParallelLoop(loop, {tile},
                                              /*noMinMaxBounds=*/true);
  if (failed(gpu::setMappingAttr(
          outer, {dimMapping(context, gpu::Processor::BlockX)})))
    return failure();
  return gpu::setMappingAttr(inner,
                             {dimMapping(context, gpu::Processor::ThreadX)});
}

/// Bytes of one element of a scratch buffer, or 0 for types not handled.
int64_t elementBytes(Type type) {
  if (type.isIndex())
    return 8; // the GPU lowering's index width
  if (type.isIntOrFloat() && type.getIntOrFloatBitWidth() % 8 == 0)
    return type.getIntOrFloatBitWidth() / 8;
  return 0;
}

/// Scratch buffers a loop body allocates (and frees in the same block)
/// become slots of one host allocation, one slot per iteration, viewed with
/// memref.view: kernels then never call the device-side malloc, whose heap
/// is small and shared by every thread.
void privatizeScratch(scf::ParallelOp loop) {
  int64_t iterations = 1;
  SmallVector<int64_t> trips;
  for (auto [lb, ub, step] :
       llvm::zip(loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
    std::optional<int64_t> l = getConstantIntValue(lb),
                           u = getConstantIntValue(ub),
                           s = getConstantIntValue(step);
    if (!l || !u || !s || *s <= 0)
      return; // dynamic bounds: the kernels keep their own allocations
    trips.push_back(llvm::divideCeil(*u - *l, *s));
    iterations *= trips.back();
  }
  struct Slot {
    memref::AllocOp alloc;
    SmallVector<memref::DeallocOp> deallocs;
    int64_t offset;
  };
  SmallVector<Slot> slots;
  int64_t slotBytes = 0;
  loop.getBody()->walk([&](memref::AllocOp alloc) {
    MemRefType type = alloc.getType();
    int64_t bytes = elementBytes(type.getElementType());
    if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
        type.getMemorySpace() || bytes == 0)
      return;
    Slot slot{alloc, {}, slotBytes};
    for (Operation *user : alloc->getUsers())
      if (auto dealloc = dyn_cast<memref::DeallocOp>(user))
        slot.deallocs.push_back(dealloc);
    // Only buffers freed in their own block: a slot is then free again
    // before the next use of the same code.
    if (slot.deallocs.size() != 1 ||
        slot.deallocs.front()->getBlock() != alloc->getBlock())
      return;
    slotBytes += llvm::alignTo(type.getNumElements() * bytes, 64);
    slots.push_back(slot);
  });
  if (slots.empty())
    return;

  OpBuilder b(loop);
  Location loc = loop.getLoc();
  auto bufferType =
      MemRefType::get({iterations * slotBytes}, b.getIntegerType(8));
  Value buffer =
      memref::AllocOp::create(b, loc, bufferType, b.getI64IntegerAttr(64));
  b.setInsertionPointAfter(loop);
  memref::DeallocOp::create(b, loc, buffer);

  // The iteration's slot: its linear index times the slot size.
  b.setInsertionPointToStart(loop.getBody());
  Value linear = arith::ConstantIndexOp::create(b, loc, 0);
  for (auto [iv, lb, step, trip] :
       llvm::zip(loop.getInductionVars(), loop.getLowerBound(), loop.getStep(),
                 trips)) {
    Value index = arith::DivUIOp::create(
        b, loc, arith::SubIOp::create(b, loc, iv, lb), step);
    linear = arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc, linear,
                              arith::ConstantIndexOp::create(b, loc, trip)),
        index);
  }
  Value base = arith::MulIOp::create(
      b, loc, linear, arith::ConstantIndexOp::create(b, loc, slotBytes));
  for (Slot &slot : slots) {
    OpBuilder at(slot.alloc);
    Value shift = arith::AddIOp::create(
        at, loc, base, arith::ConstantIndexOp::create(at, loc, slot.offset));
    Value view =
        memref::ViewOp::create(at, slot.alloc.getLoc(), slot.alloc.getType(),
                               buffer, shift, ValueRange{});
    slot.alloc.replaceAllUsesWith(view);
    slot.alloc.erase();
    for (memref::DeallocOp dealloc : slot.deallocs)
      dealloc.erase();
  }
}

LogicalResult mapLoop(scf::ParallelOp loop, int64_t threads) {
  bool plain =
      !containsParallelLoop(loop) &&
      !loop->walk([](memref::AllocOp) { return WalkResult::interrupt(); })
           .wasInterrupted() &&
      !loop->walk([](memref::AllocaOp) { return WalkResult::interrupt(); })
           .wasInterrupted();
  if (plain)
    return mapPlainLoop(loop, threads);
  privatizeScratch(loop);
  if (failed(mapToBlocks(loop)))
    return failure();
  SmallVector<scf::ParallelOp> nested;
  loop.getBody()->walk([&](scf::ParallelOp inner) { nested.push_back(inner); });
  // Post-order: inner loops are serialized before the loops holding them.
  for (scf::ParallelOp inner : nested)
    if (failed(serialize(inner)))
      return failure();
  return success();
}

struct RfMapLoopsToGpuPass
    : reformer::impl::RfMapLoopsToGpuBase<RfMapLoopsToGpuPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Block &body = func.getBody().front();
    sinkScalarReads(body);
    if (failed(wrapSerialRuns(body)))
      return signalPassFailure();
    // Only loops the host runs: outermost ones, in host blocks.
    SmallVector<scf::ParallelOp> loops;
    func.walk<WalkOrder::PreOrder>([&](scf::ParallelOp loop) {
      loops.push_back(loop);
      return WalkResult::skip();
    });
    for (scf::ParallelOp loop : loops)
      if (failed(mapLoop(loop, threads))) {
        loop.emitOpError("rf-map-loops-to-gpu: cannot map this loop");
        return signalPassFailure();
      }
  }
};

} // namespace
