//===- ModelBuilder.h - Model config → reformer dialect ---------*- C++ -*-===//

#ifndef REFORMER_MODELBUILDER_MODELBUILDER_H
#define REFORMER_MODELBUILDER_MODELBUILDER_H

#include "reformer/ModelBuilder/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::reformer {

struct BuildOptions {
  /// Also emit `@loss(tokens, targets, params…) -> tensor<f32>`, the mean
  /// next-token cross-entropy of `@forward`'s logits.
  bool emitLoss = false;
  /// Emit each distinct kind of layer (attention type, shapes, attributes)
  /// as one private function that `@forward` calls once per layer, so the
  /// compiler's work does not grow with depth. Off: every layer's
  /// `reformer.reversible` sits in `@forward` itself.
  bool layerFunctions = true;
};

/// Builds a verified module holding `@forward(tokens, params…) -> logits`
/// for `config`. Parameters are function arguments named by a
/// `reformer.param` argument attribute (docs/model-config.md). Returns
/// failure, with diagnostics emitted on `context`, if the module does not
/// verify. With `layerFunctions`, the module also holds the private layer
/// functions `@forward` calls (docs/architecture.md).
FailureOr<OwningOpRef<ModuleOp>> buildModel(MLIRContext *context,
                                            const ModelConfig &config,
                                            const BuildOptions &options = {});

} // namespace mlir::reformer

#endif // REFORMER_MODELBUILDER_MODELBUILDER_H
