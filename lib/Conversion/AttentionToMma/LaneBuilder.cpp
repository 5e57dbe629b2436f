//===- LaneBuilder.cpp - Thread-level code for a GPU or its CPU emulation -===//

#include "LaneBuilder.h"

#include "reformer/Conversion/MmaFragments.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/ErrorHandling.h"

using namespace mlir;
using namespace mlir::reformer;

namespace {
constexpr int64_t kWarpSize = 32;
constexpr StringLiteral kMmaEmulationName = "__reformer_mma_m16n8k16_bf16";
} // namespace

LaneBuilder::LaneBuilder(OpBuilder &b, Location loc, ModuleOp module,
                         int64_t emulatedThreads)
    : b(b), loc(loc), module(module), threads(emulatedThreads) {}

Type LaneBuilder::laneType(Type scalar) const {
  if (!emulated())
    return scalar;
  return VectorType::get({threads}, scalar);
}

Value LaneBuilder::lift(Value value) {
  if (!emulated() || isa<VectorType>(value.getType()))
    return value;
  return vector::BroadcastOp::create(b, loc, laneType(value.getType()), value);
}

static Value constant(OpBuilder &b, Location loc, Type type, TypedAttr scalar) {
  if (auto vector = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vector, cast<Attribute>(scalar)));
  return arith::ConstantOp::create(b, loc, scalar);
}

Value LaneBuilder::index(int64_t value) {
  return constant(b, loc, laneType(b.getIndexType()), b.getIndexAttr(value));
}
Value LaneBuilder::f32(double value) {
  return constant(b, loc, laneType(b.getF32Type()), b.getF32FloatAttr(value));
}
Value LaneBuilder::i32(int64_t value) {
  return constant(b, loc, laneType(b.getI32Type()), b.getI32IntegerAttr(value));
}

Value LaneBuilder::add(Value x, Value y) {
  return arith::AddIOp::create(b, loc, lift(x), lift(y));
}
Value LaneBuilder::sub(Value x, Value y) {
  return arith::SubIOp::create(b, loc, lift(x), lift(y));
}
Value LaneBuilder::mul(Value x, int64_t y) {
  return arith::MulIOp::create(b, loc, lift(x), index(y));
}
Value LaneBuilder::div(Value x, int64_t y) {
  return arith::DivUIOp::create(b, loc, lift(x), index(y));
}
Value LaneBuilder::rem(Value x, int64_t y) {
  return arith::RemUIOp::create(b, loc, lift(x), index(y));
}
Value LaneBuilder::lessThan(Value x, int64_t y) {
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, lift(x),
                               index(y));
}
Value LaneBuilder::positiveMod(Value x, int64_t n) {
  Value r = arith::RemSIOp::create(b, loc, lift(x), index(n));
  Value negative =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, r, index(0));
  return arith::SelectOp::create(b, loc, negative, add(r, index(n)), r);
}
Value LaneBuilder::toIndex(Value i32Value) {
  return arith::IndexCastOp::create(b, loc, laneType(b.getIndexType()),
                                    lift(i32Value));
}
Value LaneBuilder::toI32(Value indexValue) {
  return arith::IndexCastOp::create(b, loc, laneType(b.getI32Type()),
                                    lift(indexValue));
}

Value LaneBuilder::flat(Value memref) {
  Value &view = flatViews[memref];
  if (view)
    return view;
  auto type = cast<MemRefType>(memref.getType());
  auto [strides, offset] = type.getStridesAndOffset();
  int64_t extent = 1;
  for (auto [size, stride] : llvm::zip(type.getShape(), strides))
    extent += (size - 1) * stride;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfterValue(memref);
  auto flatType =
      MemRefType::get({extent}, type.getElementType(),
                      StridedLayoutAttr::get(b.getContext(), offset, {1}),
                      type.getMemorySpace());
  view = memref::ReinterpretCastOp::create(b, loc, flatType, memref, offset,
                                           ArrayRef<int64_t>{extent},
                                           ArrayRef<int64_t>{1});
  return view;
}

Value LaneBuilder::linearIndex(Value memref, ValueRange indices) {
  auto [strides, offset] =
      cast<MemRefType>(memref.getType()).getStridesAndOffset();
  Value linear = index(0);
  for (auto [i, stride] : llvm::zip(indices, strides))
    linear = add(linear, mul(i, stride));
  return linear;
}

Value LaneBuilder::load(Value memref, ValueRange indices) {
  if (!emulated())
    return memref::LoadOp::create(b, loc, memref, indices);
  Type element = cast<MemRefType>(memref.getType()).getElementType();
  auto type = cast<VectorType>(laneType(element));
  Value all = constant(b, loc, laneType(b.getI1Type()), b.getBoolAttr(true));
  Value zero = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(type, b.getZeroAttr(element)));
  Value origin = arith::ConstantIndexOp::create(b, loc, 0);
  return vector::GatherOp::create(b, loc, type, flat(memref),
                                  ValueRange{origin},
                                  linearIndex(memref, indices), all, zero);
}

void LaneBuilder::store(Value value, Value memref, ValueRange indices,
                        Value mask) {
  if (!emulated()) {
    OpBuilder::InsertionGuard guard(b);
    if (mask) {
      auto ifOp = scf::IfOp::create(b, loc, mask, /*withElseRegion=*/false);
      b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    }
    memref::StoreOp::create(b, loc, value, memref, indices);
    return;
  }
  if (!mask)
    mask = constant(b, loc, laneType(b.getI1Type()), b.getBoolAttr(true));
  vector::ScatterOp::create(
      b, loc, /*result=*/Type(), flat(memref),
      ValueRange{arith::ConstantIndexOp::create(b, loc, 0)},
      linearIndex(memref, indices), mask, lift(value), IntegerAttr());
}

void LaneBuilder::atomicAdd(Value value, Value memref, ValueRange indices) {
  if (!emulated()) {
    memref::AtomicRMWOp::create(b, loc, arith::AtomicRMWKind::addf, value,
                                memref, indices);
    return;
  }
  // One atomic add per thread: other emulated blocks may run at once.
  Value values = lift(value), at = linearIndex(memref, indices);
  Value view = flat(memref);
  auto loop =
      scf::ForOp::create(b, loc, arith::ConstantIndexOp::create(b, loc, 0),
                         arith::ConstantIndexOp::create(b, loc, threads),
                         arith::ConstantIndexOp::create(b, loc, 1));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  OpFoldResult thread = loop.getInductionVar();
  memref::AtomicRMWOp::create(
      b, loc, arith::AtomicRMWKind::addf,
      vector::ExtractOp::create(b, loc, values, thread), view,
      ValueRange{vector::ExtractOp::create(b, loc, at, thread)});
}

Value LaneBuilder::select(Value condition, Value x, Value y) {
  return arith::SelectOp::create(b, loc, lift(condition), lift(x), lift(y));
}

Value LaneBuilder::shuffleXor(Value value, int64_t laneMask) {
  if (!emulated()) {
    auto shuffle = gpu::ShuffleOp::create(
        b, loc, value,
        arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(laneMask)),
        arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(kWarpSize)),
        gpu::ShuffleMode::XOR);
    return shuffle.getShuffleResult();
  }
  SmallVector<int64_t> order;
  for (int64_t t = 0; t < threads; ++t)
    order.push_back(t ^ laneMask);
  return vector::ShuffleOp::create(b, loc, value, value, order);
}

Value LaneBuilder::packBf16(Value low, Value high) {
  if (!emulated())
    return packBf16Pair(b, loc, low, high);
  // Round to nearest even on the bit pattern (finite values).
  auto bits = [&](Value x) -> Value {
    Value word =
        arith::BitcastOp::create(b, loc, laneType(b.getI32Type()), lift(x));
    Value lsb = arith::AndIOp::create(
        b, loc, arith::ShRUIOp::create(b, loc, word, i32(16)), i32(1));
    Value rounded = arith::AddIOp::create(
        b, loc, arith::AddIOp::create(b, loc, word, i32(0x7fff)), lsb);
    return arith::ShRUIOp::create(b, loc, rounded, i32(16));
  };
  return arith::OrIOp::create(
      b, loc, arith::ShLIOp::create(b, loc, bits(high), i32(16)), bits(low));
}

StringRef LaneBuilder::mmaEmulation() {
  if (module.lookupSymbol(kMmaEmulationName))
    return kMmaEmulationName;
  MLIRContext *context = b.getContext();
  auto words = VectorType::get({kWarpSize}, b.getI32Type());
  auto values = VectorType::get({kWarpSize}, b.getF32Type());
  SmallVector<Type> inputs(6, words);
  inputs.append(4, values);
  OpBuilder mb(context);
  mb.setInsertionPointToEnd(module.getBody());
  auto function = func::FuncOp::create(
      mb, loc, kMmaEmulationName,
      mb.getFunctionType(inputs, SmallVector<Type>(4, values)));
  function.setPrivate();
  // Called once per warp and mma: inlined, it would multiply the code LLVM
  // compiles by about a hundred.
  function->setAttr("passthrough",
                    mb.getArrayAttr({mb.getStringAttr("noinline")}));
  Block *entry = function.addEntryBlock();
  mb.setInsertionPointToStart(entry);
  auto splat = [&](int64_t bitsValue) -> Value {
    return arith::ConstantOp::create(
        mb, loc,
        DenseElementsAttr::get(
            words, mb.getI32IntegerAttr(static_cast<int32_t>(bitsValue))));
  };
  // bf16 half `half` of each lane's word, as f32.
  auto unpack = [&](Value word, int64_t half) -> Value {
    Value bitsValue =
        half == 0
            ? Value(arith::ShLIOp::create(mb, loc, word, splat(16)))
            : Value(arith::AndIOp::create(mb, loc, word, splat(0xffff0000LL)));
    return arith::BitcastOp::create(mb, loc, values, bitsValue);
  };
  auto args = entry->getArguments();
  // Which (lane, register, half) holds each A and B element.
  AffineMap aMap = getMmaOperandAMap(context),
            bMap = getMmaOperandBMap(context);
  AffineMap cMap = getMmaAccumulatorMap(context);
  int64_t aAt[16][16][3], bAt[16][8][3];
  for (int64_t lane = 0; lane < kWarpSize; ++lane)
    for (int64_t half = 0; half < 2; ++half) {
      for (int64_t reg = 0; reg < 4; ++reg) {
        SmallVector<int64_t> rk = aMap.compose({lane, reg, half});
        int64_t *at = aAt[rk[0]][rk[1]];
        at[0] = lane, at[1] = reg, at[2] = half;
      }
      for (int64_t reg = 0; reg < 2; ++reg) {
        SmallVector<int64_t> kc = bMap.compose({lane, reg, half});
        int64_t *at = bAt[kc[0]][kc[1]];
        at[0] = lane, at[1] = reg, at[2] = half;
      }
    }
  SmallVector<Value> results;
  for (int64_t v = 0; v < 4; ++v) {
    Value d = args[6 + v];
    for (int64_t k = 0; k < 16; ++k) {
      // Lane l needs A(row(l), k) and B(k, col(l)): the same register and
      // half for every lane, from a lane given by the maps.
      SmallVector<int64_t> aLanes, bLanes;
      int64_t aReg = -1, aHalf = -1, bReg = -1, bHalf = -1;
      for (int64_t lane = 0; lane < kWarpSize; ++lane) {
        SmallVector<int64_t> rc = cMap.compose({lane, v});
        int64_t *a = aAt[rc[0]][k], *bb = bAt[k][rc[1]];
        if ((aReg >= 0 && (a[1] != aReg || a[2] != aHalf)) ||
            (bReg >= 0 && (bb[1] != bReg || bb[2] != bHalf)))
          llvm::report_fatal_error("mma emulation: fragment maps spread one "
                                   "k over several registers");
        aReg = a[1], aHalf = a[2], bReg = bb[1], bHalf = bb[2];
        aLanes.push_back(a[0]);
        bLanes.push_back(bb[0]);
      }
      Value aValues = unpack(args[aReg], aHalf);
      Value bValues = unpack(args[4 + bReg], bHalf);
      Value x = vector::ShuffleOp::create(mb, loc, aValues, aValues, aLanes);
      Value y = vector::ShuffleOp::create(mb, loc, bValues, bValues, bLanes);
      d = arith::AddFOp::create(mb, loc, d,
                                arith::MulFOp::create(mb, loc, x, y));
    }
    results.push_back(d);
  }
  func::ReturnOp::create(mb, loc, results);
  return kMmaEmulationName;
}

SmallVector<Value, 4>
LaneBuilder::mma(ArrayRef<Value> a, ArrayRef<Value> bWords, ArrayRef<Value> c) {
  if (!emulated())
    return createMmaSyncBf16(b, loc, a, bWords, c);
  SmallVector<Value, 4> d;
  StringRef callee = mmaEmulation();
  SmallVector<Value> operands(a);
  operands.append(bWords.begin(), bWords.end());
  operands.append(c.begin(), c.end());
  for (Value &operand : operands)
    operand = lift(operand);
  d.assign(c.begin(), c.end());
  for (Value &x : d)
    x = lift(x);
  // One call per warp, on its 32 lanes of each operand.
  for (int64_t first = 0; first < threads; first += kWarpSize) {
    SmallVector<Value> slices;
    for (Value operand : operands)
      slices.push_back(vector::ExtractStridedSliceOp::create(
          b, loc, operand, ArrayRef<int64_t>{first},
          ArrayRef<int64_t>{kWarpSize}, ArrayRef<int64_t>{1}));
    SmallVector<Type> types(4, VectorType::get({kWarpSize}, b.getF32Type()));
    auto call = func::CallOp::create(b, loc, callee, types, slices);
    for (int64_t v = 0; v < 4; ++v)
      d[v] = vector::InsertStridedSliceOp::create(
          b, loc, call.getResult(v), d[v], ArrayRef<int64_t>{first},
          ArrayRef<int64_t>{1});
  }
  return d;
}

void LaneBuilder::barrier() {
  if (!emulated())
    gpu::BarrierOp::create(b, loc);
}
