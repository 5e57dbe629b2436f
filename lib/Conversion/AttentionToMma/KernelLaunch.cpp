//===- KernelLaunch.cpp - Launching a fused attention kernel --------------===//

#include "AttentionKernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::reformer;

bool reformer::hasStaticStrides(Value value) {
  auto type = dyn_cast<MemRefType>(value.getType());
  if (!type || !type.hasStaticShape())
    return false;
  auto [strides, offset] = type.getStridesAndOffset();
  return !ShapedType::isDynamic(offset) &&
         llvm::none_of(strides, ShapedType::isDynamic) && strides.back() == 1;
}

std::optional<AttentionShape> reformer::attentionShape(Value rows, Value perm) {
  auto rowType = cast<MemRefType>(rows.getType());
  if (rowType.getRank() != 4 ||
      (perm && cast<MemRefType>(perm.getType()).getRank() != 4))
    return std::nullopt;
  AttentionShape s;
  s.batch = rowType.getDimSize(0);
  s.heads = rowType.getDimSize(1);
  s.len = rowType.getDimSize(2);
  s.dim = rowType.getDimSize(3);
  s.rounds = perm ? cast<MemRefType>(perm.getType()).getDimSize(2) : 1;
  return s;
}

std::optional<WindowParams> reformer::parseWindowParams(DictionaryAttr params,
                                                        bool lsh) {
  WindowParams w;
  auto integer = [&](StringRef name, int64_t &value) {
    auto attr = params.getAs<IntegerAttr>(name);
    value = attr ? attr.getInt() : -1;
    return bool(attr);
  };
  auto real = [&](StringRef name, double &value) {
    auto attr = params.getAs<FloatAttr>(name);
    value = attr ? attr.getValueAsDouble() : 0;
    return bool(attr);
  };
  auto causal = params.getAs<BoolAttr>("causal");
  if (!causal || !integer("chunk_len", w.chunk) ||
      !integer("chunks_before", w.before) ||
      !integer("chunks_after", w.after) ||
      !real("masked_score", w.maskedScore) || w.chunk <= 0 || w.before < 0 ||
      w.after < 0)
    return std::nullopt;
  w.causal = causal.getValue();
  if (lsh &&
      (!real("self_score", w.selfScore) || !real("key_norm_eps", w.keyNormEps)))
    return std::nullopt;
  return w;
}

void reformer::appendKernel(OpBuilder &b, func::FuncOp function, StringRef name,
                            ArrayRef<int64_t> grid, int64_t threads,
                            const SharedBuffers &shared, bool emulate,
                            KernelBody body) {
  // The outlined kernel is named `<function>_<name>`, e.g.
  // `forward_lsh_attention_0_mma`.
  Location loc = NameLoc::get(b.getStringAttr(name), function.getLoc());
  auto module = function->getParentOfType<ModuleOp>();
  auto constant = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  OpBuilder::InsertionGuard guard(b);
  if (!emulate) {
    auto workgroup = gpu::AddressSpaceAttr::get(
        b.getContext(), gpu::GPUDialect::getWorkgroupAddressSpace());
    SmallVector<Type> types;
    for (auto &[shape, type] : shared)
      types.push_back(
          MemRefType::get(shape, type, MemRefLayoutAttrInterface(), workgroup));
    Value one = constant(1);
    auto launch = gpu::LaunchOp::create(
        b, loc, constant(grid[0]), constant(grid[1]), constant(grid[2]),
        constant(threads), one, one, /*dynamicSharedMemorySize=*/nullptr,
        /*asyncTokenType=*/nullptr, ValueRange{}, types);
    b.setInsertionPointToStart(&launch.getBody().front());
    auto terminator = gpu::TerminatorOp::create(b, loc);
    b.setInsertionPoint(terminator);
    LaneBuilder lanes(b, loc, module, 0);
    auto ids = launch.getBlockIds();
    body(lanes, ValueRange{ids.x, ids.y, ids.z}, launch.getThreadIds().x,
         launch.getWorkgroupAttributions());
    return;
  }
  // Blocks in a parallel loop (z, y, x), each emulated by its threads.
  Value zero = constant(0), one = constant(1);
  auto parallel = scf::ParallelOp::create(
      b, loc, ValueRange{zero, zero, zero},
      ValueRange{constant(grid[2]), constant(grid[1]), constant(grid[0])},
      ValueRange{one, one, one});
  b.setInsertionPoint(parallel.getBody()->getTerminator());
  SmallVector<Value> buffers;
  for (auto &[shape, type] : shared)
    buffers.push_back(
        memref::AllocOp::create(b, loc, MemRefType::get(shape, type)));
  SmallVector<Attribute> ids;
  for (int64_t t = 0; t < threads; ++t)
    ids.push_back(b.getIndexAttr(t));
  auto idType = VectorType::get({threads}, b.getIndexType());
  Value tid =
      arith::ConstantOp::create(b, loc, DenseElementsAttr::get(idType, ids));
  LaneBuilder lanes(b, loc, module, threads);
  auto ivs = parallel.getInductionVars();
  body(lanes, ValueRange{ivs[2], ivs[1], ivs[0]}, tid, buffers);
  for (Value buffer : buffers)
    memref::DeallocOp::create(b, loc, buffer);
}

OpBuilder reformer::clearBody(func::FuncOp function) {
  Block &entry = function.getBody().front();
  while (!entry.empty())
    entry.back().erase();
  return OpBuilder::atBlockEnd(&entry);
}

void reformer::emitKernel(func::FuncOp function, ArrayRef<int64_t> grid,
                          int64_t threads, const SharedBuffers &shared,
                          bool emulate, KernelBody body) {
  OpBuilder b = clearBody(function);
  appendKernel(b, function, "mma", grid, threads, shared, emulate, body);
  func::ReturnOp::create(b, function.getLoc());
}
