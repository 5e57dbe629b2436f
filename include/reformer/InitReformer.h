//===- InitReformer.h - Everything the compiler tools register --*- C++ -*-===//

#ifndef REFORMER_INITREFORMER_H
#define REFORMER_INITREFORMER_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::reformer {

/// The reformer dialect, the upstream dialects the pipelines use and their
/// interface implementations (bufferization, inlining, LLVM translation).
void registerReformerDialects(DialectRegistry &registry);

/// The upstream passes, the reformer passes and the pipelines, so textual
/// pipelines and reformer-opt can name them.
void registerReformerPassesAndPipelines();

} // namespace mlir::reformer

#endif // REFORMER_INITREFORMER_H
