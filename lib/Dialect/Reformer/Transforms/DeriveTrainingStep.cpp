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
//===----------------------------------------------------------------------===//

#include "GradientRules.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"
#include "reformer/Dialect/Reformer/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::reformer {
#define GEN_PASS_DEF_RFDERIVETRAININGSTEP
#include "reformer/Dialect/Reformer/Transforms/Passes.h.inc"
} // namespace mlir::reformer

using namespace mlir;
using namespace mlir::reformer;

namespace {

/// Builds the forward and backward of one function into another, keyed by
/// the original function's values.
class StepBuilder : public ForwardValues {
public:
  explicit StepBuilder(OpBuilder &b) : b(b) {}

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

  /// Emits the forward of `body` (reversible blocks inlined); returns the
  /// value of the returned operand `index`.
  Value forward(Block &body, unsigned index) {
    for (Operation &op : body.without_terminator()) {
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
    return lookup(body.getTerminator()->getOperand(index));
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

  /// y1 = x1 + F(x2), y2 = x2 + G(y1), run backwards from the outputs.
  LogicalResult backwardReversible(ReversibleOp block) {
    Location loc = block.getLoc();
    Value y1 = lookup(block.getY1()), y2 = lookup(block.getY2());
    Value dy1 = adjoints.lookup(block.getY1());
    Value dy2 = adjoints.lookup(block.getY2());
    // An output that does not reach the loss has a zero gradient.
    auto zeros = [&](Value like) -> Value {
      auto type = cast<RankedTensorType>(like.getType());
      return arith::ConstantOp::create(
          b, loc,
          DenseElementsAttr::get(type,
                                 b.getFloatAttr(type.getElementType(), 0.0)));
    };
    if (!dy1)
      dy1 = zeros(y1);
    if (!dy2)
      dy2 = zeros(y2);
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

  OpBuilder &b;
  Value seed;
  IRMapping current;
  DenseMap<Value, Value> adjoints;
  DenseMap<Operation *, std::pair<Value, Value>> statistics;
  DenseMap<Operation *, Value> storedBuckets;
};

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

  LogicalResult buildStep(ModuleOp module, func::FuncOp forward) {
    MLIRContext *ctx = &getContext();
    Location loc = forward.getLoc();
    FunctionType fwdType = forward.getFunctionType();
    auto tokensType = cast<RankedTensorType>(fwdType.getInput(0));
    auto f32 = Float32Type::get(ctx);
    auto scalar = RankedTensorType::get({}, f32);
    auto weightsType = RankedTensorType::get(tokensType.getShape(), f32);

    // Inputs first; the moments are appended once the trainable parameters
    // (those that receive a gradient) are known.
    SmallVector<Type> inputs = {tokensType, tokensType, weightsType, scalar,
                                scalar};
    SmallVector<std::string> inputNames = {"tokens", "targets", "loss_weights",
                                           "lr", "step"};
    // A seed per step for the dropout masks, when the model drops out.
    bool dropout = false;
    forward.walk([&](DropoutOp op) {
      dropout |= !op.getSeed() && op.getRate().convertToDouble() > 0.0;
    });
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
          weights = entry->getArgument(2), lr = entry->getArgument(3),
          stepNumber = entry->getArgument(4);

    StepBuilder builder(b);
    if (dropout)
      builder.setDropoutSeed(entry->getArgument(5));
    Block &body = forward.getBody().front();
    builder.bind(forward.getArgument(0), tokens);
    for (unsigned i = 1; i < fwdType.getNumInputs(); ++i)
      builder.bind(forward.getArgument(i),
                   entry->getArgument(numInputs + i - 1));
    Value logits = builder.forward(body, 0);
    Value loss =
        SoftmaxCrossEntropyOp::create(b, loc, scalar, logits, targets, weights);
    Value dLogits = SoftmaxCrossEntropyGradOp::create(b, loc, logits.getType(),
                                                      logits, targets, weights);
    builder.accumulate(body.getTerminator()->getOperand(0), dLogits);
    if (failed(builder.backward(body)))
      return failure();

    // One optimizer step per trainable parameter.
    SmallVector<Value> newParams;
    SmallVector<std::string> trained;
    // Trainable parameters are those that receive a gradient. Their
    // optimizer state follows the parameters, one group per kind of state
    // (Adam: all m's, then all v's; Adafactor: all row moments, then the
    // column moments of the parameters of rank ≥ 2).
    SmallVector<std::pair<unsigned, Value>> trainable;
    for (unsigned i = 1; i < fwdType.getNumInputs(); ++i)
      if (Value grad = builder.gradientOf(forward.getArgument(i)))
        trainable.push_back({i, grad});
    if (trainable.empty())
      return forward.emitOpError("cannot be trained: no parameter receives a "
                                 "gradient");
    bool adafactor = optimizer == "adafactor";
    auto stateType = [&](unsigned i, StringRef kind) -> Type {
      auto type = cast<RankedTensorType>(fwdType.getInput(i));
      ArrayRef<int64_t> shape = type.getShape();
      if (!adafactor)
        return type;
      if (shape.size() < 2)
        return RankedTensorType::get(shape, f32);
      if (kind == "vc")
        return RankedTensorType::get({shape.back()}, f32);
      int64_t rows = 1;
      for (int64_t d : shape.drop_back())
        rows *= d;
      return RankedTensorType::get({rows}, f32);
    };
    SmallVector<std::string> kinds = adafactor
                                         ? SmallVector<std::string>{"vr", "vc"}
                                         : SmallVector<std::string>{"m", "v"};
    std::string prefix = adafactor ? "adafactor." : "adam.";
    // state[kind][k]: the state of trainable parameter k, or null.
    SmallVector<SmallVector<Value>> state(kinds.size());
    SmallVector<std::string> stateNames;
    for (auto [kind, slots] : llvm::zip(kinds, state))
      for (auto [i, grad] : trainable) {
        bool present =
            !(adafactor && kind == "vc" &&
              cast<RankedTensorType>(fwdType.getInput(i)).getRank() < 2);
        slots.push_back(present ? entry->addArgument(stateType(i, kind), loc)
                                : Value());
        if (present)
          stateNames.push_back(prefix + kind + "." + paramNames[i - 1]);
      }
    // Clipping needs every gradient first: scale them all at the end.
    Value scale;
    if (clipNorm > 0.0) {
      SmallVector<Value> grads;
      for (auto [i, grad] : trainable)
        grads.push_back(grad);
      scale = ClipScaleOp::create(b, loc, scalar, grads,
                                  b.getF64FloatAttr(clipNorm));
    }
    SmallVector<SmallVector<Value>> newState(kinds.size());
    for (auto [k, entryGrad] : llvm::enumerate(trainable)) {
      auto [i, grad] = entryGrad;
      Type type = fwdType.getInput(i);
      Value param = entry->getArgument(numInputs + i - 1);
      OpBuilder::InsertionGuard guard(b);
      // Update each parameter as soon as its gradient is complete (unless
      // clipping waits for all), so the gradient is freed there instead of
      // every layer's gradients living until the end of the step.
      if (!scale)
        b.setInsertionPointAfterValue(grad);
      Operation *update;
      if (adafactor) {
        Value row = state[0][k], col = state[1][k];
        // trax's Adafactor for the Reformer: decay 0.8, ε1 1e-30, ε2 1e-3,
        // update clipping at 1.
        update = AdafactorUpdateOp::create(
            b, loc, type, row.getType(), col ? col.getType() : Type(), param,
            grad, lr, stepNumber, row, col, scale, llvm::APFloat(0.8),
            llvm::APFloat(1e-30), llvm::APFloat(1e-3), llvm::APFloat(1.0));
      } else {
        update = AdamUpdateOp::create(
            b, loc, type, type, type, param, grad, state[0][k], state[1][k], lr,
            stepNumber, scale, llvm::APFloat(double(beta1)),
            llvm::APFloat(double(beta2)), llvm::APFloat(double(epsilon)),
            llvm::APFloat(double(weightDecay)));
      }
      newParams.push_back(update->getResult(0));
      for (unsigned s = 0; s < kinds.size(); ++s)
        if (state[s][k])
          newState[s].push_back(update->getResult(1 + s));
      trained.push_back(paramNames[i - 1]);
    }

    SmallVector<Value> results = {loss};
    llvm::append_range(results, newParams);
    for (SmallVector<Value> &group : newState)
      llvm::append_range(results, group);
    func::ReturnOp::create(b, loc, results);
    step.setType(FunctionType::get(ctx, entry->getArgumentTypes(),
                                   ValueRange(results).getTypes()));

    auto name = [&](StringRef s) { return StringAttr::get(ctx, s); };
    for (unsigned i = 0; i < numInputs; ++i)
      step.setArgAttr(i, "reformer.input", name(inputNames[i]));
    for (auto [i, param] : llvm::enumerate(paramNames))
      step.setArgAttr(numInputs + i, "reformer.param", name(param));
    unsigned base = numInputs + paramNames.size();
    for (auto [k, stateName] : llvm::enumerate(stateNames))
      step.setArgAttr(base + k, "reformer.param", name(stateName));
    step.setResultAttr(0, "reformer.output", name("loss"));
    for (auto [k, param] : llvm::enumerate(trained))
      step.setResultAttr(1 + k, "reformer.output", name(param));
    for (auto [k, stateName] : llvm::enumerate(stateNames))
      step.setResultAttr(1 + trained.size() + k, "reformer.output",
                         name(stateName));
    return success();
  }
};

} // namespace
