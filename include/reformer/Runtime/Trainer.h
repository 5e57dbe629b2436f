//===- Trainer.h - The training loop around a compiled step -----*- C++ -*-===//
//
// Drives a module compiled with `@train_step` (rf-derive-training-step) and
// `@forward`: keeps the parameters and Adam moments, feeds batches and the
// learning rate of each step, swaps in the updated state the step returns,
// evaluates, logs, plots and checkpoints. All model arithmetic happens in
// the compiled code; the loop only moves tensors and computes metrics
// (cross-entropy and accuracy of @forward's logits) for evaluation.
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_RUNTIME_TRAINER_H
#define REFORMER_RUNTIME_TRAINER_H

#include "reformer/Runtime/Data.h"
#include "reformer/Runtime/Module.h"

#include <iosfwd>

namespace reformer::runtime {

struct TrainOptions {
  int64_t steps = 300;
  double lr = 1e-3;
  /// Linear warmup over this many steps, then rsqrt decay (trax's
  /// `constant * linear_warmup * rsqrt_decay`).
  int64_t warmup = 100;
  int64_t evalEvery = 100; ///< 0: at the end only.
  int64_t evalBatches = 4;
  int64_t printEvery = 10;
  int64_t saveEvery = 0; ///< 0: at the end only.
  uint64_t seed = 1;
  /// Checkpoint, log (log.jsonl) and loss curve (loss.png) go here.
  std::string outDir = "reformer-train-out";
};

struct StepStats {
  int64_t step = 0;
  double loss = 0, lr = 0, seconds = 0;
};

struct EvalStats {
  int64_t step = 0;
  double loss = 0, accuracy = 0;
};

class Trainer {
public:
  /// Checks that `module` has @train_step and @forward with one batch shape.
  static Status create(std::unique_ptr<LoadedModule> module,
                       const TrainOptions &options,
                       std::unique_ptr<Trainer> &out);

  /// Fresh state: parameters from `options.seed`, zero moments, step 0.
  Status initialize();
  /// The state saved by `save`: parameters, moments, step and data stream.
  Status resume(const std::string &checkpoint);
  /// Writes the state atomically (temporary file + rename).
  Status save(const std::string &checkpoint) const;

  /// One training step on a batch drawn from `data`.
  Status step(const TokenSource &data, StepStats &out);
  /// Weighted cross-entropy and accuracy of `options.evalBatches` fixed
  /// batches of `data`, through @forward.
  Status evaluate(const TokenSource &data, EvalStats &out);

  int64_t completedSteps() const { return steps_; }
  int64_t batchSize() const { return batch_; }
  int64_t seqLen() const { return len_; }
  int64_t vocabSize() const { return vocab_; }
  /// Learning rate of step `t` (from 1).
  double learningRate(int64_t t) const;
  /// A state tensor (parameter or moment) by ABI name, or null (also when
  /// its device copy cannot be read back).
  const Tensor *state(const std::string &name) const;

private:
  Trainer() = default;
  /// Gives state_ and next_ device copies (GPU modules); clears old ones.
  Status keepStateOnDevice();
  Status call(const FunctionAbi &function, Batch &batch, Tensor *lr,
              Tensor *stepNumber, Tensor *dropoutSeed, Tensor *loss,
              Tensor *logits);

  std::unique_ptr<LoadedModule> module_;
  const FunctionAbi *train_ = nullptr, *forward_ = nullptr;
  TrainOptions options_;
  int64_t batch_ = 0, len_ = 0, vocab_ = 0, steps_ = 0;
  std::map<std::string, Tensor> state_, next_;
  /// On the GPU: state_ and next_ stay in device memory between steps;
  /// host copies are brought up to date when read (save, state).
  std::unique_ptr<ResidentTensors> resident_;
  Rng rng_;
};

/// The whole loop: steps until `options.steps`, with a progress line on
/// `progress`, evaluation, checkpoints (OUT/checkpoint.safetensors), one
/// JSON object per step and per evaluation in OUT/log.jsonl, and the loss
/// curve in OUT/loss.png at the end. `valid` may be null (no evaluation).
Status runTraining(Trainer &trainer, const TokenSource &train,
                   const TokenSource *valid, const TrainOptions &options,
                   std::ostream &progress);

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_TRAINER_H
