//===- Patterns.h - Lowering patterns of reformer ops, by family -*- C++ -*-=//

#ifndef REFORMER_LIB_CONVERSION_REFORMERTOLINALG_PATTERNS_H
#define REFORMER_LIB_CONVERSION_REFORMERTOLINALG_PATTERNS_H

#include "reformer/Conversion/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::reformer {

/// layer_norm, dense, chunked_ffn.
void populateLayerNormAndDenseLoweringPatterns(RewritePatternSet &patterns);
/// embedding, axial_pos_embedding, length_mask, split_heads, merge_heads.
void populateEmbeddingAndLayoutLoweringPatterns(RewritePatternSet &patterns);
/// dropout (seeded; the unseeded form is the identity).
void populateDropoutLoweringPatterns(RewritePatternSet &patterns);
/// softmax_cross_entropy.
void populateLossLoweringPatterns(RewritePatternSet &patterns);
/// lsh_rotations, lsh_hash, bucket_sort (in `sortTiles` tiles), unsort,
/// combine_rounds.
void populateLshStepLoweringPatterns(RewritePatternSet &patterns,
                                     int64_t sortTiles = 1);
/// dense_grad, layer_norm_grad, chunked_ffn_grad, softmax_cross_entropy_grad,
/// embedding_grad, axial_pos_embedding_grad, adam_update.
void populateGradientLoweringPatterns(RewritePatternSet &patterns);
/// sorted_chunk_attention, local_attention.
void populateAttentionLoweringPatterns(RewritePatternSet &patterns,
                                       const AttentionLoweringOptions &options);
/// lsh_attention_grad, local_attention_grad.
void populateAttentionGradLoweringPatterns(
    RewritePatternSet &patterns, const AttentionLoweringOptions &options);

} // namespace mlir::reformer

#endif // REFORMER_LIB_CONVERSION_REFORMERTOLINALG_PATTERNS_H
