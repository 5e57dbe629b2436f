//===- TestModels.h - Model configs shared by the numerics tests -*- C++ -*-=//

#ifndef REFORMER_UNITTESTS_NUMERICS_TESTMODELS_H
#define REFORMER_UNITTESTS_NUMERICS_TESTMODELS_H

#include "Reference.h"

#include "reformer/ModelBuilder/ModelConfig.h"

namespace harness {

/// Two layers (local, then LSH), causal, padded from 40 to 48 positions.
mlir::reformer::ModelConfig smallModel();

/// The same hyper-parameters for the reference.
reference::ModelConfig toReference(const mlir::reformer::ModelConfig &c);

} // namespace harness

#endif // REFORMER_UNITTESTS_NUMERICS_TESTMODELS_H
