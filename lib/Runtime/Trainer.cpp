//===- Trainer.cpp - The training loop around a compiled step -------------===//

#include "reformer/Runtime/Trainer.h"

#include "reformer/Runtime/LossPlot.h"
#include "reformer/Runtime/Params.h"
#include "reformer/Runtime/Safetensors.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <sys/stat.h>

namespace reformer::runtime {

namespace {

const char *kTrainStep = "train_step";
const char *kForward = "forward";
const char *kStepKey = "trainer.step";
const char *kRngKey = "trainer.rng";

/// Optimizer state (Adam moments, Adafactor's factored moments): starts at
/// zero.
bool isOptimizerState(const std::string &name) {
  return name.rfind("adam.", 0) == 0 || name.rfind("adafactor.", 0) == 0;
}

Tensor zeros(const TensorSpec &spec) {
  Tensor t(spec);
  std::memset(t.data(), 0, spec.numBytes());
  return t;
}

Tensor copyOf(const Tensor &t) {
  Tensor c(t.spec());
  std::memcpy(c.data(), t.data(), t.spec().numBytes());
  return c;
}

Tensor scalar(const std::string &name, float value) {
  Tensor t({name, DType::F32, {}});
  *t.as<float>() = value;
  return t;
}

std::string duration(double seconds) {
  char buf[32];
  int s = int(seconds + 0.5);
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%dh%02dm", s / 3600, s / 60 % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof(buf), "%dm%02ds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof(buf), "%ds", s);
  return buf;
}

/// The number after `"key": ` in a JSON line, if present.
bool jsonNumber(const std::string &line, const std::string &key, double &out) {
  std::string pattern = "\"" + key + "\": ";
  size_t at = line.find(pattern);
  if (at == std::string::npos)
    return false;
  out = std::strtod(line.c_str() + at + pattern.size(), nullptr);
  return true;
}

} // namespace

Status Trainer::create(std::unique_ptr<LoadedModule> module,
                       const TrainOptions &options,
                       std::unique_ptr<Trainer> &out) {
  const FunctionAbi *train = module->function(kTrainStep);
  const FunctionAbi *forward = module->function(kForward);
  if (!train || !forward)
    return Status::fail("the module has no @train_step and @forward: compile "
                        "it with reformer-compile --emit-train-step");
  const ArgAbi *tokens = train->find("tokens");
  const ArgAbi *logits = forward->find("logits");
  if (!tokens || tokens->spec.shape.size() != 2 || !logits ||
      logits->spec.shape.size() != 3)
    return Status::fail("@train_step/@forward: expected tokens [B, L] and "
                        "logits [B, L, V]");
  std::unique_ptr<Trainer> t(new Trainer());
  t->batch_ = tokens->spec.shape[0];
  t->len_ = tokens->spec.shape[1];
  t->vocab_ = logits->spec.shape[2];
  t->train_ = train;
  t->forward_ = forward;
  t->options_ = options;
  t->module_ = std::move(module);
  if (t->module_->onGpu())
    t->resident_ = std::make_unique<ResidentTensors>();
  out = std::move(t);
  return Status::ok();
}

double Trainer::learningRate(int64_t t) const {
  if (options_.warmup <= 0)
    return options_.lr;
  double w = double(options_.warmup);
  return options_.lr * std::min(1.0, double(t) / w) *
         std::sqrt(w / std::max(double(t), w));
}

const Tensor *Trainer::state(const std::string &name) const {
  auto it = state_.find(name);
  if (it == state_.end() || (resident_ && !resident_->toHost(it->second)))
    return nullptr;
  return &it->second;
}

Status Trainer::keepStateOnDevice() {
  if (!resident_)
    return Status::ok();
  for (auto *tensors : {&state_, &next_})
    for (const auto &[name, tensor] : *tensors)
      if (Status s = resident_->add(tensor); !s)
        return s;
  return Status::ok();
}

Status Trainer::initialize() {
  ParamMap params;
  if (Status s = initParams(*forward_, options_.seed, params); !s)
    return s;
  // Device copies are found by host buffer: drop them before the buffers.
  if (resident_)
    resident_->clear();
  state_.clear();
  next_.clear();
  for (const ArgAbi &arg : train_->args) {
    const std::string &name = arg.spec.name;
    if (arg.kind == ArgKind::Param) {
      if (isOptimizerState(name))
        state_[name] = zeros(arg.spec);
      else if (params.count(name))
        state_[name] = std::move(params[name]);
      else
        return Status::fail("@train_step parameter '" + name +
                            "' is not a parameter of @forward");
    } else if (arg.kind == ArgKind::Output && name != "loss") {
      next_[name] = Tensor(arg.spec);
    }
  }
  steps_ = 0;
  rng_.state = options_.seed * 0x2545F4914F6CDD1DULL + 1;
  return keepStateOnDevice();
}

Status Trainer::resume(const std::string &checkpoint) {
  std::map<std::string, Tensor> file;
  if (Status s = readSafetensors(checkpoint, file); !s)
    return s;
  if (resident_)
    resident_->clear();
  state_.clear();
  next_.clear();
  for (const ArgAbi &arg : train_->args) {
    const std::string &name = arg.spec.name;
    if (arg.kind == ArgKind::Output && name != "loss")
      next_[name] = Tensor(arg.spec);
    if (arg.kind != ArgKind::Param)
      continue;
    auto it = file.find(name);
    if (it == file.end())
      return Status::fail(checkpoint + ": no tensor '" + name + "'");
    const TensorSpec &got = it->second.spec();
    if (got.dtype != arg.spec.dtype || got.shape != arg.spec.shape)
      return Status::fail(checkpoint + ": '" + name + "' is " + got.describe() +
                          ", the model expects " + arg.spec.describe());
    state_[name] = std::move(it->second);
  }
  for (const char *key : {kStepKey, kRngKey}) {
    auto it = file.find(key);
    if (it == file.end() || it->second.spec().dtype != DType::I64 ||
        it->second.spec().numElements() != 1)
      return Status::fail(checkpoint + ": no i64 '" + key +
                          "' (not a training checkpoint)");
  }
  steps_ = *file[kStepKey].as<int64_t>();
  std::memcpy(&rng_.state, file[kRngKey].data(), sizeof(uint64_t));
  return keepStateOnDevice();
}

Status Trainer::save(const std::string &checkpoint) const {
  std::map<std::string, Tensor> file;
  for (const auto &[name, tensor] : state_) {
    if (resident_)
      if (Status s = resident_->toHost(tensor); !s)
        return s;
    file[name] = copyOf(tensor);
  }
  Tensor step({kStepKey, DType::I64, {1}});
  *step.as<int64_t>() = steps_;
  Tensor rng({kRngKey, DType::I64, {1}});
  std::memcpy(rng.data(), &rng_.state, sizeof(uint64_t));
  file[kStepKey] = std::move(step);
  file[kRngKey] = std::move(rng);
  return writeSafetensors(checkpoint, file);
}

Status Trainer::call(const FunctionAbi &function, Batch &batch, Tensor *lr,
                     Tensor *stepNumber, Tensor *dropoutSeed, Tensor *loss,
                     Tensor *logits) {
  std::vector<Tensor *> args;
  for (const ArgAbi &arg : function.args) {
    const std::string &name = arg.spec.name;
    Tensor *t = nullptr;
    if (arg.kind == ArgKind::Input) {
      t = name == "tokens"         ? &batch.tokens
          : name == "targets"      ? &batch.targets
          : name == "loss_weights" ? &batch.weights
          : name == "lr"           ? lr
          : name == "step"         ? stepNumber
          : name == "dropout_seed" ? dropoutSeed
                                   : nullptr;
    } else if (arg.kind == ArgKind::Param) {
      auto it = state_.find(name);
      t = it == state_.end() ? nullptr : &it->second;
    } else {
      auto it = next_.find(name);
      t = name == "loss"      ? loss
          : name == "logits"  ? logits
          : it == next_.end() ? nullptr
                              : &it->second;
    }
    if (!t)
      return Status::fail("@" + function.name + ": nothing to pass as '" +
                          name + "'");
    args.push_back(t);
  }
  return module_->call(function, args, resident_.get());
}

Status Trainer::step(const TokenSource &data, StepStats &out) {
  Batch batch(batch_, len_);
  data.sample(rng_, batch);
  int64_t t = steps_ + 1;
  double rate = learningRate(t);
  Tensor lr = scalar("lr", float(rate));
  Tensor stepNumber = scalar("step", float(t));
  Tensor loss = scalar("loss", 0.0f);
  // Dropout masks: a seed per step, from the run's seed (so a resumed run
  // draws the same masks).
  Tensor dropoutSeed({"dropout_seed", DType::I64, {}});
  *dropoutSeed.as<int64_t>() = int64_t(
      Rng{options_.seed ^ (uint64_t(t) * 0xD1B54A32D192ED03ULL)}.next());
  auto start = std::chrono::steady_clock::now();
  if (Status s =
          call(*train_, batch, &lr, &stepNumber, &dropoutSeed, &loss, nullptr);
      !s)
    return s;
  out.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  // The step returned the next state: swap it in.
  for (auto &[name, tensor] : next_)
    std::swap(state_[name], tensor);
  steps_ = t;
  out.step = t;
  out.loss = *loss.as<float>();
  out.lr = rate;
  if (!std::isfinite(out.loss))
    return Status::fail(
        "step " + std::to_string(t) + ": the loss is not finite (" +
        std::to_string(out.loss) + "); lower --lr or raise --warmup");
  return Status::ok();
}

Status Trainer::evaluate(const TokenSource &data, EvalStats &out) {
  Batch batch(batch_, len_);
  Tensor logits({"logits", DType::F32, {batch_, len_, vocab_}});
  double total = 0, weightSum = 0, correct = 0;
  for (int64_t k = 0; k < options_.evalBatches; ++k) {
    data.evalBatch(k, batch);
    if (Status s =
            call(*forward_, batch, nullptr, nullptr, nullptr, nullptr, &logits);
        !s)
      return s;
    const float *z = logits.as<float>();
    const int32_t *targets = batch.targets.as<int32_t>();
    const float *weights = batch.weights.as<float>();
    for (int64_t p = 0; p < batch_ * len_; ++p) {
      if (weights[p] == 0)
        continue;
      const float *row = z + p * vocab_;
      int64_t best = std::max_element(row, row + vocab_) - row;
      double max = row[best], sum = 0;
      for (int64_t v = 0; v < vocab_; ++v)
        sum += std::exp(double(row[v]) - max);
      total += weights[p] * (max + std::log(sum) - row[targets[p]]);
      weightSum += weights[p];
      correct += weights[p] * (best == targets[p]);
    }
  }
  out.step = steps_;
  out.loss = weightSum > 0 ? total / weightSum : 0;
  out.accuracy = weightSum > 0 ? correct / weightSum : 0;
  return Status::ok();
}

Status runTraining(Trainer &trainer, const TokenSource &train,
                   const TokenSource *valid, const TrainOptions &options,
                   std::ostream &progress) {
  ::mkdir(options.outDir.c_str(), 0755);
  std::string logPath = options.outDir + "/log.jsonl";
  std::string checkpoint = options.outDir + "/checkpoint.safetensors";
  // A resumed run keeps the log up to its checkpoint and drops what a
  // previous run wrote after it.
  std::vector<std::string> kept;
  {
    std::ifstream in(logPath);
    std::string line;
    double step;
    while (std::getline(in, line))
      if (jsonNumber(line, "step", step) &&
          int64_t(step) <= trainer.completedSteps())
        kept.push_back(line);
  }
  std::ofstream log(logPath, std::ios::trunc);
  if (!log)
    return Status::fail(logPath + ": cannot write");
  for (const std::string &line : kept)
    log << line << "\n";

  const char *unit = train.bytes() ? "bits/byte" : "bits/token";
  double tokensPerStep = double(trainer.batchSize() * trainer.seqLen());
  double elapsed = 0;
  int64_t timed = 0;
  auto evaluate = [&]() -> Status {
    if (!valid)
      return Status::ok();
    EvalStats e;
    if (Status s = trainer.evaluate(*valid, e); !s)
      return s;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "eval  step %lld | loss %.4f | %.3f %s | accuracy %.2f%%",
                  (long long)e.step, e.loss, e.loss / std::log(2.0), unit,
                  100 * e.accuracy);
    progress << line << std::endl;
    log << "{\"step\": " << e.step << ", \"eval_loss\": " << e.loss
        << ", \"eval_accuracy\": " << e.accuracy << "}" << std::endl;
    return Status::ok();
  };

  while (trainer.completedSteps() < options.steps) {
    StepStats s;
    if (Status st = trainer.step(train, s); !st)
      return st;
    // The first step includes page faults of fresh buffers: leave it out.
    if (s.step > 1 || options.steps == 1) {
      elapsed += s.seconds;
      ++timed;
    }
    double tokensPerSecond = timed ? tokensPerStep * timed / elapsed : 0;
    log << "{\"step\": " << s.step << ", \"loss\": " << s.loss
        << ", \"lr\": " << s.lr << ", \"seconds\": " << s.seconds
        << ", \"tokens_per_s\": " << tokensPerSecond << "}\n";
    if (s.step % options.printEvery == 0 || s.step == options.steps ||
        s.step == 1) {
      double eta = timed ? elapsed / timed * (options.steps - s.step) : 0;
      char line[256];
      std::snprintf(line, sizeof(line),
                    "step %lld/%lld | loss %.4f | %.3f %s | %.0f tok/s | "
                    "lr %.2e | ETA %s",
                    (long long)s.step, (long long)options.steps, s.loss,
                    s.loss / std::log(2.0), unit, tokensPerSecond, s.lr,
                    duration(eta).c_str());
      progress << line << std::endl;
    }
    if (options.evalEvery > 0 && s.step % options.evalEvery == 0 &&
        s.step != options.steps)
      if (Status st = evaluate(); !st)
        return st;
    if (options.saveEvery > 0 && s.step % options.saveEvery == 0)
      if (Status st = trainer.save(checkpoint); !st)
        return st;
  }
  if (Status st = evaluate(); !st)
    return st;
  if (Status st = trainer.save(checkpoint); !st)
    return st;
  log.close();

  // The loss curve from the whole log (resumed runs included).
  PlotSeries trainCurve{"train", {}, 0x1F77B4}, evalCurve{"eval", {}, 0xD62728};
  std::ifstream in(logPath);
  std::string line;
  while (std::getline(in, line)) {
    double step, value;
    if (!jsonNumber(line, "step", step))
      continue;
    if (jsonNumber(line, "loss", value))
      trainCurve.points.push_back({step, value});
    if (jsonNumber(line, "eval_loss", value))
      evalCurve.points.push_back({step, value});
  }
  std::vector<PlotSeries> series = {trainCurve};
  if (!evalCurve.points.empty())
    series.push_back(evalCurve);
  std::string plot = options.outDir + "/loss.png";
  if (Status st = writeLossPlot(plot, series); !st)
    return st;
  progress << "checkpoint " << checkpoint << ", log " << logPath
           << ", loss curve " << plot << std::endl;
  return Status::ok();
}

} // namespace reformer::runtime
