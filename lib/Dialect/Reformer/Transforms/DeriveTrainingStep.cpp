//===- DeriveTrainingStep.cpp - forward → compiled training step ----------===//
//
// Reverse-mode differentiation of a model's forward function, specialized
// to its structure: a straight line of dialect ops and reversible blocks.
// The forward runs with the blocks inlined; the backward visits the ops in
// reverse, and for each reversible block recomputes G(y1), then x2, then
// F(x2), then x1 from the block's outputs before differentiating through
// the recomputed ops. Only the last block's outputs and the LSH buckets are
// live from the forward into the backward; bufferization frees every other
// activation after its last use, so memory does not grow with depth.
//
// A layer function (one reversible block, called once per layer) is
// derived once into a step forward and a step backward that the step calls
// per layer, so the step's size, and the compiler's time, do not grow with
// depth either.
//
//===----------------------------------------------------------------------===//

#include "GradientRules.h"

#include "reformer/Dialect/Reformer/IR/LayerFunctions.h"
#include "reformer/Dialect/Reformer/IR/ReformerOps.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFDERIVETRAININGSTEP
#include "reformer/Dialect/Reformer/Transforms/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// The optimizer the pass options describe: the state it keeps per
/// parameter and its update op.
struct Optimizer {
  bool adafactor = false;
  double beta1 = 0, beta2 = 0, epsilon = 0, weightDecay = 0;

  /// Adam: all m's, then all v's; Adafactor: the row moments, then the
  /// column moments of the parameters of rank ≥ 2.
  SmallVector<StringRef> stateKinds() const {
    if (adafactor)
      return {"vr", "vc"};
    return {"m", "v"};
  }
  StringRef prefix() const { return adafactor ? "adafactor." : "adam."; }

  /// The type of a parameter's state of `kind`, or null where it has none.
  Type stateType(Type paramType, StringRef kind) const {
    auto type = cast<RankedTensorType>(paramType);
    if (!adafactor)
      return type;
    auto f32 = Float32Type::get(type.getContext());
    ArrayRef<int64_t> shape = type.getShape();
    if (shape.size() < 2)
      return kind == "vc" ? Type() : RankedTensorType::get(shape, f32);
    if (kind == "vc")
      return RankedTensorType::get({shape.back()}, f32);
    int64_t rows = 1;
    for (int64_t d : shape.drop_back())
      rows *= d;
    return RankedTensorType::get({rows}, f32);
  }

  /// One step of `param`; `state` has one value per kind (null where the
  /// parameter has none). Returns the new parameter, then the new state of
  /// each kind (null where none).
  SmallVector<Value> update(OpBuilder &b, Location loc, Value param, Value grad,
                            ArrayRef<Value> state, Value lr, Value step,
                            Value scale) const {
    Type type = param.getType();
    Operation *op;
    if (adafactor) {
      Value row = state[0], col = state[1];
      // trax's Adafactor for the Reformer: decay 0.8, ε1 1e-30, ε2 1e-3,
      // update clipping at 1.
      op = AdafactorUpdateOp::create(
          b, loc, type, row.getType(), col ? col.getType() : Type(), param,
          grad, lr, step, row, col, scale, llvm::APFloat(0.8),
          llvm::APFloat(1e-30), llvm::APFloat(1e-3), llvm::APFloat(1.0));
    } else {
      op = AdamUpdateOp::create(b, loc, type, type, type, param, grad, state[0],
                                state[1], lr, step, scale, llvm::APFloat(beta1),
                                llvm::APFloat(beta2), llvm::APFloat(epsilon),
                                llvm::APFloat(weightDecay));
    }
    SmallVector<Value> results = {op->getResult(0)};
    for (auto [k, value] : llvm::enumerate(state))
      results.push_back(value ? op->getResult(1 + k) : Value());
    return results;
  }
};

/// The reversible block of a layer function, `(x1, x2, operands…) ->
/// (y1, y2)` whose body is one `reformer.reversible` of (x1, x2) returning
/// its results; null for any other function.
ReversibleOp layerBlock(func::FuncOp fn) {
  if (fn.isExternal() || !fn.getBody().hasOneBlock() ||
      fn.getNumArguments() < 2 || fn.getNumResults() != 2)
    return {};
  Block &body = fn.getBody().front();
  auto block = dyn_cast<ReversibleOp>(body.front());
  auto ret = dyn_cast<func::ReturnOp>(body.back());
  if (!block || !ret || &body.front() == &body.back() ||
      block->getNextNode() != ret.getOperation() ||
      block.getX1() != fn.getArgument(0) ||
      block.getX2() != fn.getArgument(1) ||
      ret.getOperands() != ValueRange(block.getResults()))
    return {};
  return block;
}

LogicalResult notALayerFunction(func::CallOp call) {
  return call.emitOpError()
         << "cannot be differentiated: rf-derive-training-step follows calls "
            "of layer functions only, (x1, x2, operands…) -> (y1, y2) "
            "holding one reformer.reversible of (x1, x2)";
}

/// The training step's functions for one layer function: its forward,
/// which also returns the LSH buckets, and its backward, which rebuilds the
/// layer's inputs from its outputs, differentiates it and, where it owns
/// them, updates its parameters.
struct LayerStep {
  /// `(x1, x2, operands…, [dropout seed]) -> (y1, y2, buckets…)`.
  func::FuncOp forward;
  /// `(y1, y2, dy1, dy2, buckets…, operands…, [dropout seed],
  ///   [state…, lr, step]) -> (x1, x2, dx1, dx2, gradients…, params'…,
  ///   state'…)`, with the arguments it does not read left out.
  func::FuncOp backward;
  /// Which of the candidate arguments above `backward` keeps.
  llvm::BitVector keptArgs;
  /// Layer arguments (index ≥ 2) whose gradient `backward` returns.
  SmallVector<unsigned> gradients;
  /// Layer arguments (index ≥ 2) `backward` updates itself.
  SmallVector<unsigned> updated;
};

/// What the step shares with the calls of its layers.
struct StepContext {
  Optimizer optimizer;
  Value lr, stepNumber;
  /// state[kind][i]: the step's argument for the state of forward argument
  /// i (null where the parameter has none).
  SmallVector<SmallVector<Value>> state;
  /// Updates the layers' backward functions made: forward argument → the
  /// new parameter, then its new state per kind (null where none).
  DenseMap<Value, SmallVector<Value>> layerUpdates;
  /// Derived per layer function; looked up by callee.
  DenseMap<Operation *, LayerStep> layerSteps;
};

/// Builds the forward and backward of one function into another, keyed by
/// the original function's values.
class StepBuilder : public ForwardValues {
public:
  StepBuilder(OpBuilder &b, StepContext *context = nullptr)
      : b(b), context(context) {}

  /// Maps an original value (a function argument) to its value in the step.
  void bind(Value original, Value value) { current.map(original, value); }

  Value lookup(Value original) const override {
    return original ? current.lookupOrDefault(original) : Value();
  }
  std::pair<Value, Value> lshStatistics(LshAttentionOp op) const override {
    return statistics.lookup(op);
  }
  Value dropoutSeed() const override { return seed; }
  void setDropoutSeed(Value value) { seed = value; }
  /// The buckets the forward stored for `op`.
  Value bucketsOf(LshAttentionOp op) const { return storedBuckets.lookup(op); }
  void setBuckets(LshAttentionOp op, Value buckets) {
    storedBuckets[op] = buckets;
  }

  /// Emits the forward of `body` (reversible blocks inlined, layer
  /// functions called through their step forward).
  LogicalResult forward(Block &body) {
    for (Operation &op : body.without_terminator()) {
      if (auto call = dyn_cast<func::CallOp>(op)) {
        if (failed(forwardCall(call)))
          return failure();
        continue;
      }
      auto block = dyn_cast<ReversibleOp>(op);
      if (!block) {
        cloneForward(op);
        continue;
      }
      Location loc = block.getLoc();
      Value f = emitRegion(block.getF(), lookup(block.getX2()), false);
      Value y1 = arith::AddFOp::create(b, loc, lookup(block.getX1()), f);
      Value g = emitRegion(block.getG(), y1, false);
      Value y2 = arith::AddFOp::create(b, loc, lookup(block.getX2()), g);
      current.map(block.getY1(), y1);
      current.map(block.getY2(), y2);
    }
    return success();
  }

  /// Adds `grad` to the gradient of `original`.
  void accumulate(Value original, Value grad) {
    Value &slot = adjoints[original];
    slot = slot
               ? arith::AddFOp::create(b, grad.getLoc(), slot, grad).getResult()
               : grad;
  }

  Value gradientOf(Value original) const { return adjoints.lookup(original); }

  /// Differentiates the ops of `body` in reverse.
  LogicalResult backward(Block &body) {
    for (Operation &op :
         llvm::make_early_inc_range(llvm::reverse(body.without_terminator()))) {
      if (auto block = dyn_cast<ReversibleOp>(op)) {
        if (failed(backwardReversible(block)))
          return failure();
        continue;
      }
      if (auto call = dyn_cast<func::CallOp>(op)) {
        if (failed(backwardCall(call)))
          return failure();
        continue;
      }
      SmallVector<Value> resultGrads;
      bool any = false;
      for (Value result : op.getResults()) {
        resultGrads.push_back(adjoints.lookup(result));
        any |= bool(resultGrads.back());
      }
      if (!any)
        continue;
      FailureOr<SmallVector<Value>> grads =
          buildOperandGradients(b, &op, resultGrads, *this);
      if (failed(grads))
        return failure();
      for (auto [operand, grad] : llvm::zip(op.getOperands(), *grads))
        if (grad)
          accumulate(operand, grad);
    }
    return success();
  }

private:
  /// Clones a forward op; LSH attention also returns its log-sum-exps and
  /// buckets, which the backward keeps.
  void cloneForward(Operation &op) {
    // Inference dropout (no seed) draws its mask from the step's seed, so
    // the recomputation and the gradient see the forward's mask.
    if (auto dropout = dyn_cast<DropoutOp>(op); dropout && !dropout.getSeed()) {
      Value input = lookup(dropout.getInput());
      current.map(dropout.getResult(),
                  seed ? DropoutOp::create(
                             b, dropout.getLoc(), dropout.getType(), input,
                             seed, dropout.getRateAttr(), dropout.getSaltAttr())
                             .getResult()
                       : input);
      return;
    }
    auto lsh = dyn_cast<LshAttentionOp>(op);
    if (!lsh) {
      b.clone(op, current);
      return;
    }
    SmallVector<Type> types(op.getResultTypes());
    if (!lsh.getLse()) {
      auto qkType = cast<RankedTensorType>(lsh.getQk().getType());
      SmallVector<int64_t> perRound = {qkType.getDimSize(0),
                                       qkType.getDimSize(1), lsh.getNHashes(),
                                       qkType.getDimSize(2)};
      types.push_back(RankedTensorType::get(perRound, b.getF32Type()));
      types.push_back(RankedTensorType::get(perRound, b.getI32Type()));
    }
    OperationState state(op.getLoc(), op.getName());
    for (Value operand : op.getOperands())
      state.addOperands(lookup(operand));
    state.addAttributes(op.getAttrs());
    state.addTypes(types);
    Operation *clone = b.create(state);
    current.map(lsh.getOut(), clone->getResult(0));
    for (auto [original, value] :
         llvm::zip(lsh.getTrainingResults(), clone->getResults().drop_front()))
      current.map(original, value);
    statistics[lsh] = {clone->getResult(1), clone->getResult(2)};
    storedBuckets[lsh] = clone->getResult(2);
  }

  /// Emits the ops of a residual function on `input`; returns what it
  /// yields. A recomputation attends with the forward's stored buckets.
  Value emitRegion(Region &region, Value input, bool recompute) {
    Block &block = region.front();
    current.map(block.getArgument(0), input);
    for (Operation &op : block.without_terminator()) {
      auto lsh = dyn_cast<LshAttentionOp>(op);
      if (!recompute || !lsh) {
        cloneForward(op);
        continue;
      }
      Value buckets = storedBuckets.lookup(lsh);
      auto [out, lse] = buildLshAttentionFromBuckets(
          b, lsh, lookup(lsh.getQk()), lookup(lsh.getV()),
          lookup(lsh.getMask()), buckets);
      current.map(lsh.getOut(), out);
      statistics[lsh] = {lse, buckets};
    }
    return lookup(block.getTerminator()->getOperand(0));
  }

  /// The gradient of a residual function's input, given its output's.
  FailureOr<Value> backwardRegion(Region &region, Value outputGrad) {
    Block &block = region.front();
    accumulate(block.getTerminator()->getOperand(0), outputGrad);
    if (failed(backward(block)))
      return failure();
    return adjoints.lookup(block.getArgument(0));
  }

  /// A zero tensor shaped like `like`: the gradient of an output that does
  /// not reach the loss.
  Value zerosLike(Location loc, Value like) {
    auto type = cast<RankedTensorType>(like.getType());
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(type,
                               b.getFloatAttr(type.getElementType(), 0.0)));
  }

  /// y1 = x1 + F(x2), y2 = x2 + G(y1), run backwards from the outputs.
  LogicalResult backwardReversible(ReversibleOp block) {
    Location loc = block.getLoc();
    Value y1 = lookup(block.getY1()), y2 = lookup(block.getY2());
    Value dy1 = adjoints.lookup(block.getY1());
    Value dy2 = adjoints.lookup(block.getY2());
    if (!dy1)
      dy1 = zerosLike(loc, y1);
    if (!dy2)
      dy2 = zerosLike(loc, y2);
    // G: recompute G(y1) for x2 = y2 − G(y1), then its gradient.
    Value g = emitRegion(block.getG(), y1, /*recompute=*/true);
    Value x2 = arith::SubFOp::create(b, loc, y2, g);
    FailureOr<Value> dG = backwardRegion(block.getG(), dy2);
    if (failed(dG))
      return failure();
    Value dy1Total = *dG ? arith::AddFOp::create(b, loc, dy1, *dG) : dy1;
    // F: recompute F(x2) for x1 = y1 − F(x2), then its gradient.
    Value f = emitRegion(block.getF(), x2, /*recompute=*/true);
    Value x1 = arith::SubFOp::create(b, loc, y1, f);
    FailureOr<Value> dF = backwardRegion(block.getF(), dy1Total);
    if (failed(dF))
      return failure();
    Value dx2 = *dF ? arith::AddFOp::create(b, loc, dy2, *dF) : dy2;
    accumulate(block.getX1(), dy1Total);
    accumulate(block.getX2(), dx2);
    current.map(block.getX1(), x1);
    current.map(block.getX2(), x2);
    return success();
  }

  /// The step functions derived for the layer function `call` calls.
  FailureOr<LayerStep *> layerStepOf(func::CallOp call) {
    auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
        call, call.getCalleeAttr());
    if (context && callee) {
      auto it = context->layerSteps.find(callee);
      if (it != context->layerSteps.end())
        return &it->second;
    }
    return notALayerFunction(call);
  }

  /// A call of a layer function runs its step forward; the buckets it
  /// returns wait for the backward.
  LogicalResult forwardCall(func::CallOp call) {
    FailureOr<LayerStep *> layer = layerStepOf(call);
    if (failed(layer))
      return failure();
    SmallVector<Value> args;
    for (Value operand : call.getOperands())
      args.push_back(lookup(operand));
    if (seed)
      args.push_back(seed);
    auto fwd = func::CallOp::create(b, call.getLoc(), (*layer)->forward, args);
    current.map(call.getResult(0), fwd.getResult(0));
    current.map(call.getResult(1), fwd.getResult(1));
    callBuckets[call] = SmallVector<Value>(fwd.getResults().drop_front(2));
    return success();
  }

  /// A call of a layer function runs its step backward: the layer's inputs
  /// and their gradients, and its parameters' gradients or updates.
  LogicalResult backwardCall(func::CallOp call) {
    FailureOr<LayerStep *> found = layerStepOf(call);
    if (failed(found))
      return failure();
    LayerStep &layer = **found;
    Location loc = call.getLoc();
    Value y1 = lookup(call.getResult(0)), y2 = lookup(call.getResult(1));
    Value dy1 = adjoints.lookup(call.getResult(0));
    Value dy2 = adjoints.lookup(call.getResult(1));
    SmallVector<Value> candidates = {y1, y2, dy1 ? dy1 : zerosLike(loc, y1),
                                     dy2 ? dy2 : zerosLike(loc, y2)};
    llvm::append_range(candidates, callBuckets.lookup(call));
    for (Value operand : call.getOperands().drop_front(2))
      candidates.push_back(lookup(operand));
    if (seed)
      candidates.push_back(seed);
    const Optimizer &optimizer = context->optimizer;
    SmallVector<StringRef> kinds = optimizer.stateKinds();
    auto hasState = [&](unsigned p, unsigned k) {
      return bool(optimizer.stateType(call.getOperand(p).getType(), kinds[k]));
    };
    if (!layer.updated.empty()) {
      for (unsigned k = 0; k < kinds.size(); ++k)
        for (unsigned p : layer.updated)
          if (hasState(p, k))
            candidates.push_back(stateOf(call.getOperand(p), k));
      candidates.push_back(context->lr);
      candidates.push_back(context->stepNumber);
    }
    SmallVector<Value> args;
    for (auto [i, value] : llvm::enumerate(candidates))
      if (layer.keptArgs.test(i))
        args.push_back(value);
    auto bwd = func::CallOp::create(b, loc, layer.backward, args);
    ValueRange results = bwd.getResults();
    accumulate(call.getOperand(0), results[2]);
    accumulate(call.getOperand(1), results[3]);
    // The first layer reads one value twice; either input rebuilds it.
    current.map(call.getOperand(0), results[0]);
    current.map(call.getOperand(1), results[1]);
    results = results.drop_front(4);
    for (unsigned p : layer.gradients) {
      accumulate(call.getOperand(p), results.front());
      results = results.drop_front();
    }
    unsigned numUpdated = layer.updated.size();
    for (auto [u, p] : llvm::enumerate(layer.updated)) {
      SmallVector<Value> &update = context->layerUpdates[call.getOperand(p)];
      update.push_back(results[u]);
    }
    results = results.drop_front(numUpdated);
    for (unsigned k = 0; k < kinds.size(); ++k)
      for (unsigned p : layer.updated) {
        Value next;
        if (hasState(p, k)) {
          next = results.front();
          results = results.drop_front();
        }
        context->layerUpdates[call.getOperand(p)].push_back(next);
      }
    return success();
  }

  /// The step's argument holding the optimizer state of kind `kind` of the
  /// forward parameter `param`.
  Value stateOf(Value param, unsigned kind) const {
    unsigned index = cast<BlockArgument>(param).getArgNumber();
    return context->state[kind][index];
  }

  OpBuilder &b;
  StepContext *context;
  Value seed;
  IRMapping current;
  DenseMap<Value, Value> adjoints;
  DenseMap<Operation *, std::pair<Value, Value>> statistics;
  DenseMap<Operation *, Value> storedBuckets;
  DenseMap<Operation *, SmallVector<Value>> callBuckets;
};

/// A private layer function of the step, with an entry block for `inputs`;
/// its results are set once its body is built.
func::FuncOp createLayerStepFunction(OpBuilder &b, Location loc,
                                     const Twine &name, TypeRange inputs) {
  auto fn = func::FuncOp::create(b, loc, name.str(),
                                 FunctionType::get(b.getContext(), inputs, {}));
  fn.setPrivate();
  fn->setAttr(kLayerAttrName, b.getUnitAttr());
  fn.addEntryBlock();
  return fn;
}

/// Derives the step functions of the layer function `callee`, named after
/// it with `prefix`. `owned`: the layer arguments (parameters of the
/// forward that only this layer reads) whose update the backward makes.
/// `seedType`: the dropout seed's, when the step draws masks.
FailureOr<LayerStep> deriveLayerStep(ModuleOp module, func::FuncOp callee,
                                     StringRef prefix, Type seedType,
                                     const llvm::BitVector &owned,
                                     const StepContext &context) {
  MLIRContext *ctx = module.getContext();
  ReversibleOp block = layerBlock(callee);
  Location loc = callee.getLoc();
  Block &body = callee.getBody().front();
  unsigned numArgs = callee.getNumArguments();
  SmallVector<LshAttentionOp> lshOps;
  callee.walk([&](LshAttentionOp op) { lshOps.push_back(op); });
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(module.getBody());
  LayerStep layer;

  // Forward: the layer as in the step, returning the buckets too.
  SmallVector<Type> fwdInputs(callee.getArgumentTypes());
  if (seedType)
    fwdInputs.push_back(seedType);
  func::FuncOp fwd = createLayerStepFunction(
      b, loc, prefix + callee.getSymName() + "_forward", fwdInputs);
  Block *fwdEntry = &fwd.getBody().front();
  OpBuilder fb = OpBuilder::atBlockEnd(fwdEntry);
  StepBuilder forward(fb);
  for (auto [arg, value] :
       llvm::zip(callee.getArguments(), fwdEntry->getArguments()))
    forward.bind(arg, value);
  if (seedType)
    forward.setDropoutSeed(fwdEntry->getArguments().back());
  if (failed(forward.forward(body)))
    return failure();
  SmallVector<Value> fwdResults = {forward.lookup(block.getY1()),
                                   forward.lookup(block.getY2())};
  for (LshAttentionOp op : lshOps)
    fwdResults.push_back(forward.bucketsOf(op));
  func::ReturnOp::create(fb, loc, fwdResults);
  fwd.setType(
      FunctionType::get(ctx, fwdInputs, ValueRange(fwdResults).getTypes()));
  layer.forward = fwd;

  // Backward: inputs rebuilt from outputs, gradients, owned updates.
  Type yType = block.getY1().getType();
  SmallVector<Type> bwdInputs = {yType, yType, yType, yType};
  llvm::append_range(bwdInputs,
                     ValueRange(fwdResults).drop_front(2).getTypes());
  llvm::append_range(bwdInputs, callee.getArgumentTypes().drop_front(2));
  if (seedType)
    bwdInputs.push_back(seedType);
  func::FuncOp bwd = createLayerStepFunction(
      b, loc, prefix + callee.getSymName() + "_backward", bwdInputs);
  Block *entry = &bwd.getBody().front();
  OpBuilder bb = OpBuilder::atBlockEnd(entry);
  StepBuilder backward(bb);
  backward.bind(block.getY1(), entry->getArgument(0));
  backward.bind(block.getY2(), entry->getArgument(1));
  backward.accumulate(block.getY1(), entry->getArgument(2));
  backward.accumulate(block.getY2(), entry->getArgument(3));
  for (auto [k, op] : llvm::enumerate(lshOps))
    backward.setBuckets(op, entry->getArgument(4 + k));
  unsigned base = 4 + lshOps.size();
  for (unsigned p = 2; p < numArgs; ++p)
    backward.bind(callee.getArgument(p), entry->getArgument(base + p - 2));
  if (seedType)
    backward.setDropoutSeed(entry->getArgument(base + numArgs - 2));
  if (failed(backward.backward(body)))
    return failure();
  SmallVector<Value> results = {backward.lookup(callee.getArgument(0)),
                                backward.lookup(callee.getArgument(1)),
                                backward.gradientOf(callee.getArgument(0)),
                                backward.gradientOf(callee.getArgument(1))};
  SmallVector<std::pair<unsigned, Value>> updates;
  for (unsigned p = 2; p < numArgs; ++p) {
    Value grad = backward.gradientOf(callee.getArgument(p));
    if (!grad)
      continue;
    if (owned.test(p)) {
      updates.push_back({p, grad});
      continue;
    }
    layer.gradients.push_back(p);
    results.push_back(grad);
  }
  if (!updates.empty()) {
    const Optimizer &optimizer = context.optimizer;
    SmallVector<StringRef> kinds = optimizer.stateKinds();
    SmallVector<SmallVector<Value>> state(updates.size(),
                                          SmallVector<Value>(kinds.size()));
    for (auto [k, kind] : llvm::enumerate(kinds))
      for (auto [u, update] : llvm::enumerate(updates))
        if (Type type = optimizer.stateType(
                callee.getArgument(update.first).getType(), kind))
          state[u][k] = entry->addArgument(type, loc);
    auto scalar = RankedTensorType::get({}, Float32Type::get(ctx));
    Value lr = entry->addArgument(scalar, loc);
    Value step = entry->addArgument(scalar, loc);
    SmallVector<SmallVector<Value>> next;
    for (auto [u, update] : llvm::enumerate(updates)) {
      auto [p, grad] = update;
      // As soon as the gradient is complete, as in the step itself.
      OpBuilder::InsertionGuard guard(bb);
      bb.setInsertionPointAfterValue(grad);
      next.push_back(optimizer.update(bb, loc,
                                      backward.lookup(callee.getArgument(p)),
                                      grad, state[u], lr, step, Value()));
      layer.updated.push_back(p);
    }
    for (SmallVector<Value> &values : next)
      results.push_back(values[0]);
    for (unsigned k = 0; k < kinds.size(); ++k)
      for (SmallVector<Value> &values : next)
        if (values[1 + k])
          results.push_back(values[1 + k]);
  }
  func::ReturnOp::create(bb, loc, results);
  // Recomputing F clones what the backward does not read (the rotations:
  // it re-sorts the stored buckets); drop that first. Arguments the
  // backward then does not read are not passed.
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(*entry)))
    if (isOpTriviallyDead(&op))
      op.erase();
  llvm::BitVector unused(entry->getNumArguments());
  for (BlockArgument arg : entry->getArguments())
    if (arg.use_empty())
      unused.set(arg.getArgNumber());
  layer.keptArgs = unused;
  layer.keptArgs.flip();
  entry->eraseArguments(unused);
  bwd.setType(FunctionType::get(ctx, entry->getArgumentTypes(),
                                ValueRange(results).getTypes()));
  layer.backward = bwd;
  return layer;
}

} // namespace

namespace {

struct RfDeriveTrainingStepPass
    : reformer::impl::RfDeriveTrainingStepBase<RfDeriveTrainingStepPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(forwardName);
    if (!forward || forward.isExternal()) {
      module.emitError() << "rf-derive-training-step: no function @"
                         << forwardName << " with a body to differentiate";
      return signalPassFailure();
    }
    if (optimizer != "adam" && optimizer != "adafactor") {
      module.emitError() << "rf-derive-training-step: unknown optimizer '"
                         << optimizer << "' (adam or adafactor)";
      return signalPassFailure();
    }
    if (failed(checkForward(forward)))
      return signalPassFailure();
    if (module.lookupSymbol(stepName)) {
      module.emitError() << "rf-derive-training-step: @" << stepName
                         << " exists already";
      return signalPassFailure();
    }
    if (failed(buildStep(module, forward)))
      signalPassFailure();
  }

  /// tokens [B, L] and f32 parameters in, f32 logits [B, L, V] out, one
  /// block.
  LogicalResult checkForward(func::FuncOp forward) {
    FunctionType type = forward.getFunctionType();
    auto tokens = type.getNumInputs() > 0
                      ? dyn_cast<RankedTensorType>(type.getInput(0))
                      : RankedTensorType();
    auto logits = type.getNumResults() == 1
                      ? dyn_cast<RankedTensorType>(type.getResult(0))
                      : RankedTensorType();
    if (!tokens || tokens.getRank() != 2 ||
        !isa<IntegerType>(tokens.getElementType()) || !logits ||
        logits.getRank() != 3 || !forward.getBody().hasOneBlock())
      return forward.emitOpError()
             << "cannot be differentiated: expects (tokens [B, L], params…) "
                "-> logits [B, L, V] in one block";
    for (Type input : type.getInputs().drop_front())
      if (!cast<ShapedType>(input).getElementType().isF32())
        return forward.emitOpError()
               << "cannot be differentiated: rf-derive-training-step "
                  "supports f32 parameters only, got "
               << input;
    if (!logits.getElementType().isF32())
      return forward.emitOpError()
             << "cannot be differentiated: expects f32 logits";
    return success();
  }

  /// Derives the step functions of every layer function `body` calls.
  /// A parameter that only one layer reads is updated in that layer's
  /// backward, unless clipping needs every gradient first.
  LogicalResult deriveLayerSteps(ModuleOp module, Block &body, bool dropout,
                                 StepContext &context) {
    llvm::MapVector<func::FuncOp, SmallVector<func::CallOp>> callsOf;
    for (auto call : body.getOps<func::CallOp>()) {
      auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
          call, call.getCalleeAttr());
      if (!callee || !layerBlock(callee))
        return notALayerFunction(call);
      callsOf[callee].push_back(call);
    }
    Type seedType =
        dropout ? RankedTensorType::get({}, IntegerType::get(&getContext(), 64))
                : Type();
    for (auto &[callee, calls] : callsOf) {
      llvm::BitVector owned(callee.getNumArguments());
      for (unsigned p = 2; p < callee.getNumArguments(); ++p)
        owned[p] = clipNorm <= 0.0 && llvm::all_of(calls, [&](func::CallOp c) {
                     auto arg = dyn_cast<BlockArgument>(c.getOperand(p));
                     return arg && arg.getOwner() == &body &&
                            arg.getArgNumber() > 0 && arg.hasOneUse();
                   });
      FailureOr<LayerStep> layer = deriveLayerStep(
          module, callee, stepName + "_", seedType, owned, context);
      if (failed(layer))
        return failure();
      context.layerSteps[callee] = std::move(*layer);
    }
    return success();
  }

  LogicalResult buildStep(ModuleOp module, func::FuncOp forward) {
    MLIRContext *ctx = &getContext();
    Location loc = forward.getLoc();
    FunctionType fwdType = forward.getFunctionType();
    auto tokensType = cast<RankedTensorType>(fwdType.getInput(0));
    auto f32 = Float32Type::get(ctx);
    auto scalar = RankedTensorType::get({}, f32);
    auto weightsType = RankedTensorType::get(tokensType.getShape(), f32);

    // Inputs and parameters first, then the optimizer state.
    SmallVector<Type> inputs = {tokensType, tokensType, weightsType, scalar,
                                scalar};
    SmallVector<std::string> inputNames = {"tokens", "targets", "loss_weights",
                                           "lr", "step"};
    // A seed per step for the dropout masks, when the model drops out.
    bool dropout = false;
    auto findDropout = [&](Operation *root) {
      root->walk([&](DropoutOp op) {
        dropout |= !op.getSeed() && op.getRate().convertToDouble() > 0.0;
      });
    };
    findDropout(forward);
    for (auto call : forward.getBody().front().getOps<func::CallOp>())
      if (Operation *callee =
              SymbolTable::lookupNearestSymbolFrom(call, call.getCalleeAttr()))
        findDropout(callee);
    if (dropout) {
      inputs.push_back(RankedTensorType::get({}, IntegerType::get(ctx, 64)));
      inputNames.push_back("dropout_seed");
    }
    const unsigned numInputs = inputs.size();
    SmallVector<std::string> paramNames;
    for (unsigned i = 1; i < fwdType.getNumInputs(); ++i) {
      inputs.push_back(fwdType.getInput(i));
      auto name = forward.getArgAttrOfType<StringAttr>(i, "reformer.param");
      paramNames.push_back(name ? name.str() : "arg" + std::to_string(i));
    }

    OpBuilder b(ctx);
    b.setInsertionPointAfter(forward);
    auto step = func::FuncOp::create(b, loc, stepName,
                                     FunctionType::get(ctx, inputs, {}));
    Block *entry = step.addEntryBlock();
    b.setInsertionPointToStart(entry);
    Value tokens = entry->getArgument(0), targets = entry->getArgument(1),
          weights = entry->getArgument(2);

    StepContext context;
    context.optimizer.adafactor = optimizer == "adafactor";
    context.optimizer.beta1 = beta1;
    context.optimizer.beta2 = beta2;
    context.optimizer.epsilon = epsilon;
    context.optimizer.weightDecay = weightDecay;
    context.lr = entry->getArgument(3);
    context.stepNumber = entry->getArgument(4);
    const Optimizer &opt = context.optimizer;
    SmallVector<StringRef> kinds = opt.stateKinds();
    // Every parameter's state, for now: the state of parameters that turn
    // out to receive no gradient is dropped at the end.
    unsigned firstState = entry->getNumArguments();
    context.state.assign(kinds.size(),
                         SmallVector<Value>(fwdType.getNumInputs()));
    for (auto [k, kind] : llvm::enumerate(kinds))
      for (unsigned i = 1; i < fwdType.getNumInputs(); ++i)
        if (Type type = opt.stateType(fwdType.getInput(i), kind))
          context.state[k][i] = entry->addArgument(type, loc);

    Block &body = forward.getBody().front();
    if (failed(deriveLayerSteps(module, body, dropout, context)))
      return failure();

    StepBuilder builder(b, &context);
    if (dropout)
      builder.setDropoutSeed(entry->getArgument(5));
    builder.bind(forward.getArgument(0), tokens);
    for (unsigned i = 1; i < fwdType.getNumInputs(); ++i)
      builder.bind(forward.getArgument(i),
                   entry->getArgument(numInputs + i - 1));
    if (failed(builder.forward(body)))
      return failure();
    Value logits = builder.lookup(body.getTerminator()->getOperand(0));
    Value loss =
        SoftmaxCrossEntropyOp::create(b, loc, scalar, logits, targets, weights);
    Value dLogits = SoftmaxCrossEntropyGradOp::create(b, loc, logits.getType(),
                                                      logits, targets, weights);
    builder.accumulate(body.getTerminator()->getOperand(0), dLogits);
    if (failed(builder.backward(body)))
      return failure();

    // Trainable parameters are those that receive a gradient: updated in
    // their layer's backward, or here.
    SmallVector<std::pair<unsigned, Value>> trainable;
    for (unsigned i = 1; i < fwdType.getNumInputs(); ++i) {
      Value arg = forward.getArgument(i);
      if (context.layerUpdates.count(arg))
        trainable.push_back({i, Value()});
      else if (Value grad = builder.gradientOf(arg))
        trainable.push_back({i, grad});
    }
    if (trainable.empty())
      return forward.emitOpError("cannot be trained: no parameter receives a "
                                 "gradient");
    // Clipping needs every gradient first: scale them all at the end.
    Value scale;
    if (clipNorm > 0.0) {
      SmallVector<Value> grads;
      for (auto [i, grad] : trainable)
        grads.push_back(grad);
      scale = ClipScaleOp::create(b, loc, scalar, grads,
                                  b.getF64FloatAttr(clipNorm));
    }
    // One optimizer step per trainable parameter: the new parameter, then
    // its new state per kind (null where it has none).
    SmallVector<SmallVector<Value>> updated;
    SmallVector<std::string> trained;
    for (auto [i, grad] : trainable) {
      trained.push_back(paramNames[i - 1]);
      if (!grad) {
        updated.push_back(context.layerUpdates.lookup(forward.getArgument(i)));
        continue;
      }
      OpBuilder::InsertionGuard guard(b);
      // Update each parameter as soon as its gradient is complete (unless
      // clipping waits for all), so the gradient is freed there instead of
      // every layer's gradients living until the end of the step.
      if (!scale)
        b.setInsertionPointAfterValue(grad);
      SmallVector<Value> state;
      for (unsigned k = 0; k < kinds.size(); ++k)
        state.push_back(context.state[k][i]);
      updated.push_back(
          opt.update(b, loc, entry->getArgument(numInputs + i - 1), grad, state,
                     context.lr, context.stepNumber, scale));
    }
    SmallVector<Value> newParams;
    SmallVector<SmallVector<Value>> newState(kinds.size());
    SmallVector<std::string> stateNames;
    for (auto [k, kind] : llvm::enumerate(kinds))
      for (auto [t, values] : llvm::enumerate(updated))
        if (values[1 + k]) {
          newState[k].push_back(values[1 + k]);
          stateNames.push_back((opt.prefix() + kind + "." + trained[t]).str());
        }
    for (SmallVector<Value> &values : updated)
      newParams.push_back(values[0]);
    // The state of parameters without a gradient goes.
    llvm::BitVector unusedState(entry->getNumArguments());
    for (BlockArgument arg : entry->getArguments().drop_front(firstState))
      if (arg.use_empty())
        unusedState.set(arg.getArgNumber());
    entry->eraseArguments(unusedState);

    SmallVector<Value> results = {loss};
    llvm::append_range(results, newParams);
    for (SmallVector<Value> &group : newState)
      llvm::append_range(results, group);
    func::ReturnOp::create(b, loc, results);
    step.setType(FunctionType::get(ctx, entry->getArgumentTypes(),
                                   ValueRange(results).getTypes()));

    // Named all at once: setting one argument's attributes rebuilds the
    // list of every argument's, quadratic in a deep model's parameters.
    auto named = [&](StringRef key, StringRef value) {
      return DictionaryAttr::get(ctx,
                                 {NamedAttribute(StringAttr::get(ctx, key),
                                                 StringAttr::get(ctx, value))});
    };
    SmallVector<DictionaryAttr> argAttrs, resultAttrs;
    for (unsigned i = 0; i < numInputs; ++i)
      argAttrs.push_back(named("reformer.input", inputNames[i]));
    for (const std::string &param : paramNames)
      argAttrs.push_back(named("reformer.param", param));
    for (const std::string &stateName : stateNames)
      argAttrs.push_back(named("reformer.param", stateName));
    resultAttrs.push_back(named("reformer.output", "loss"));
    for (const std::string &param : trained)
      resultAttrs.push_back(named("reformer.output", param));
    for (const std::string &stateName : stateNames)
      resultAttrs.push_back(named("reformer.output", stateName));
    step.setAllArgAttrs(argAttrs);
    step.setAllResultAttrs(resultAttrs);
    return success();
  }
};

} // namespace
