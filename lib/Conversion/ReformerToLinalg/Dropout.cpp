//===- Dropout.cpp - seeded dropout → one elementwise generic -------------===//
//
// The keep decision of every element is a pure function of (seed, salt,
// row-major index), computed in registers: no mask tensor is stored, and a
// recomputation or the gradient draws exactly the same mask.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "Patterns.h"

#include "reformer/Dialect/Reformer/IR/ReformerOps.h"

using namespace mlir;
using namespace mlir::reformer;
using namespace mlir::reformer::lowering;

namespace {

Value i64Const(ImplicitLocOpBuilder &b, uint64_t value) {
  return arith::ConstantOp::create(b, b.getI64IntegerAttr(int64_t(value)));
}

/// splitmix64's finalizer on 64-bit wrapping integers.
Value splitmix(ImplicitLocOpBuilder &b, Value z) {
  auto mixStep = [&](Value x, int shift, uint64_t factor) {
    x = arith::XOrIOp::create(b, x,
                              arith::ShRUIOp::create(b, x, i64Const(b, shift)));
    return factor ? arith::MulIOp::create(b, x, i64Const(b, factor)).getResult()
                  : x;
  };
  z = mixStep(z, 30, 0xBF58476D1CE4E5B9ULL);
  z = mixStep(z, 27, 0x94D049BB133111EBULL);
  return mixStep(z, 31, 0);
}

struct LowerDropout : OpRewritePattern<DropoutOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(DropoutOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getSeed()) // inference: the identity
      return rewriter.replaceOp(op, op.getInput()), success();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "needs static shapes");
    unsigned rank = type.getRank();
    double rate = op.getRate().convertToDouble();
    Value seed = tensor::ExtractOp::create(b, op.getSeed(), ValueRange{});
    // seed · φ ⊕ salt · c: one key per (step, dropout site).
    Value key = arith::XOrIOp::create(
        b, arith::MulIOp::create(b, seed, i64Const(b, 0x9E3779B97F4A7C15ULL)),
        i64Const(b, uint64_t(op.getSalt()) * 0xD1B54A32D192ED03ULL));
    Type elementType = type.getElementType();
    Value result = generic(
        b, op.getInput(), emptyTensor(b, type.getShape(), elementType),
        {identity(b.getContext(), rank), identity(b.getContext(), rank)}, rank,
        {}, [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          // Row-major index of the element.
          Value n = indexConst(ib, 0);
          for (auto [d, iv] : llvm::enumerate(loopIndices(ib, rank)))
            n = arith::AddIOp::create(
                ib,
                arith::MulIOp::create(ib, n,
                                      indexConst(ib, type.getDimSize(d))),
                iv);
          Value bits = splitmix(
              ib,
              arith::XOrIOp::create(
                  ib, key, arith::IndexCastOp::create(ib, ib.getI64Type(), n)));
          // Top 24 bits as a float in [0, 1), exact in f32.
          Value u = arith::MulFOp::create(
              ib,
              arith::UIToFPOp::create(
                  ib, ib.getF32Type(),
                  arith::ShRUIOp::create(ib, bits, i64Const(ib, 40))),
              f32Const(ib, 1.0 / double(1 << 24)));
          Value keep = arith::CmpFOp::create(ib, arith::CmpFPredicate::OGE, u,
                                             f32Const(ib, rate));
          Value scaled = arith::MulFOp::create(
              ib, toF32(ib, a[0]), f32Const(ib, 1.0 / (1.0 - rate)));
          Value y =
              arith::SelectOp::create(ib, keep, scaled, f32Const(ib, 0.0));
          linalg::YieldOp::create(ib, ValueRange{fromF32(ib, y, elementType)});
        })[0];
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void reformer::populateDropoutLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerDropout>(patterns.getContext());
}
