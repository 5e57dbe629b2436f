//===- TestModels.h - Model configs shared by the numerics tests -*- C++ -*-=//

#ifndef REFORMER_UNITTESTS_NUMERICS_TESTMODELS_H
#define REFORMER_UNITTESTS_NUMERICS_TESTMODELS_H

#include "Reference.h"

#include "reformer/ModelBuilder/ModelConfig.h"

namespace harness {

/// Two layers (local, then LSH), causal, padded from 40 to 48 positions.
mlir::reformer::ModelConfig smallModel();

/// smallModel() in mixed precision: f32 weights and residual stream, bf16
/// activations.
mlir::reformer::ModelConfig mixedPrecisionModel();

/// The CPU milestone's model: 2 LSH layers, d_model 256, 4 heads, d_ff
/// 1024, causal, 4 hashes, chunks of 64, 512 buckets (16 × 32), L = 16384.
mlir::reformer::ModelConfig milestoneModel();

/// The same hyper-parameters for the reference.
reference::ModelConfig toReference(const mlir::reformer::ModelConfig &c);

} // namespace harness

#endif // REFORMER_UNITTESTS_NUMERICS_TESTMODELS_H
