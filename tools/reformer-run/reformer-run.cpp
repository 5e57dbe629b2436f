//===- reformer-run.cpp - Run a compiled Reformer module ------------------===//
//
// Loads a module made by reformer-compile (no MLIR involved), fills its
// parameters (from .npy files or a seeded initialization), feeds inputs from
// .npy files or a byte file, and writes outputs as .npy or reports a loss.
//
//===----------------------------------------------------------------------===//

#include "reformer/Runtime/Cuda.h"
#include "reformer/Runtime/Module.h"
#include "reformer/Runtime/Npy.h"
#include "reformer/Runtime/Params.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

using namespace reformer::runtime;

namespace {

const char *kUsage = R"(usage: reformer-run MODULE.so [options]

  --list                      print the module's functions and arguments
  --function=NAME             function to run (default: forward)
  --input NAME=FILE.npy       an input of the function (repeatable); an
                              integer input also takes NAME=bytes:FILE (the
                              file's first bytes as token ids) or
                              NAME=ids:FILE (whitespace-separated ids)
  --output NAME=FILE.npy      write an output to a file (repeatable); outputs
                              not named are summarized on stdout
  --params=PATH               read parameters from FILE.safetensors or from
                              DIR/<name>.npy
  --init-seed=N               initialize parameters from seed N (default 0)
  --save-params=PATH          write the parameters used (FILE.safetensors or
                              DIR/<name>.npy)
  --eval-bytes=FILE           evaluate @loss over FILE (a byte sequence such
                              as enwik8) and report nats and bits per byte
  --max-windows=N             evaluate at most N windows (default: all)
  --repeat=N                  call the function N times and report the
                              median and fastest time per call (default 1)
  --kernels                   GPU modules: list every kernel with its
                              registers and local memory (spills) per thread

A module compiled with --target=cuda runs on the GPU: its inputs and
parameters are copied to device memory for each call and its outputs back;
the run ends with the device and the peak of its device memory pool.
)";

struct Options {
  std::string module, function = "forward", paramsPath, savePath, evalBytes;
  std::vector<std::pair<std::string, std::string>> inputs, outputs;
  uint64_t seed = 0;
  int64_t maxWindows = -1;
  int64_t repeat = 1;
  bool list = false;
  bool kernels = false;
};

int fail(const std::string &message) {
  std::cerr << "reformer-run: error: " << message << "\n";
  return 1;
}

/// A whole non-negative decimal number, or nullopt.
std::optional<uint64_t> parseCount(const std::string &text) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoull(text);
}

bool parseArgs(int argc, char **argv, Options &o, std::string &error) {
  auto valueOf = [&](int &i, const std::string &arg,
                     const std::string &flag) -> std::optional<std::string> {
    if (arg.rfind(flag + "=", 0) == 0)
      return arg.substr(flag.size() + 1);
    if (arg == flag && i + 1 < argc)
      return std::string(argv[++i]);
    return std::nullopt;
  };
  auto pair = [&](const std::string &v, const std::string &flag,
                  std::vector<std::pair<std::string, std::string>> &into) {
    size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0) {
      error = flag + " expects NAME=FILE, got '" + v + "'";
      return false;
    }
    into.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg == "--list") {
      o.list = true;
    } else if (arg == "--kernels") {
      o.kernels = true;
    } else if (auto v = valueOf(i, arg, "--function")) {
      o.function = *v;
    } else if (auto v = valueOf(i, arg, "--input")) {
      if (!pair(*v, "--input", o.inputs))
        return false;
    } else if (auto v = valueOf(i, arg, "--output")) {
      if (!pair(*v, "--output", o.outputs))
        return false;
    } else if (auto v = valueOf(i, arg, "--params")) {
      o.paramsPath = *v;
    } else if (auto v = valueOf(i, arg, "--save-params")) {
      o.savePath = *v;
    } else if (auto v = valueOf(i, arg, "--eval-bytes")) {
      o.evalBytes = *v;
    } else if (auto v = valueOf(i, arg, "--init-seed")) {
      auto n = parseCount(*v);
      if (!n) {
        error = "--init-seed expects a non-negative integer, got '" + *v + "'";
        return false;
      }
      o.seed = *n;
    } else if (auto v = valueOf(i, arg, "--max-windows")) {
      auto n = parseCount(*v);
      if (!n) {
        error =
            "--max-windows expects a non-negative integer, got '" + *v + "'";
        return false;
      }
      o.maxWindows = static_cast<int64_t>(*n);
    } else if (auto v = valueOf(i, arg, "--repeat")) {
      auto n = parseCount(*v);
      if (!n || *n < 1) {
        error = "--repeat expects a count of at least 1, got '" + *v + "'";
        return false;
      }
      o.repeat = static_cast<int64_t>(*n);
    } else if (!arg.empty() && arg[0] != '-' && o.module.empty()) {
      o.module = arg;
    } else {
      error = "unknown argument '" + arg + "' (see --help)";
      return false;
    }
  }
  if (o.module.empty()) {
    error = "no module given (see --help)";
    return false;
  }
  return true;
}

void listModule(const LoadedModule &module) {
  const char *kinds[] = {"input", "param", "output"};
  for (const FunctionAbi &fn : module.functions()) {
    std::cout << "function " << fn.name << "\n";
    for (const ArgAbi &arg : fn.args)
      std::cout << "  " << kinds[int(arg.kind)] << " " << arg.spec.name << " "
                << arg.spec.describe() << "\n";
  }
}

/// The embedding table's rows bound the token ids an input may hold.
int64_t vocabOf(const FunctionAbi &fn) {
  const ArgAbi *table = fn.find("embeddings.word_embeddings.weight");
  return table ? table->spec.shape[0] : -1;
}

Status checkTokens(const Tensor &t, int64_t vocab, const std::string &what) {
  if (vocab < 0 || t.spec().dtype != DType::I32)
    return Status::ok();
  const int32_t *p = t.as<int32_t>();
  for (int64_t i = 0; i < t.spec().numElements(); ++i)
    if (p[i] < 0 || p[i] >= vocab)
      return Status::fail(what + ": token " + std::to_string(p[i]) +
                          " at index " + std::to_string(i) +
                          " is outside the vocabulary [0, " +
                          std::to_string(vocab) + ")");
  return Status::ok();
}

/// An i32 input filled from the first bytes of a file (`bytes:FILE`) or
/// from whitespace-separated integers in a text file (`ids:FILE`); exactly
/// as many values as the input holds are needed.
Status readTokenFile(const std::string &source, const TensorSpec &spec,
                     Tensor &out) {
  bool raw = source.rfind("bytes:", 0) == 0;
  std::string path = source.substr(source.find(':') + 1);
  if (spec.dtype != DType::I32)
    return Status::fail(source + ": input '" + spec.name + "' is " +
                        spec.describe() + "; bytes: and ids: fill i32 inputs");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::fail(path + ": cannot open: " + std::strerror(errno));
  out = Tensor(spec);
  int32_t *p = out.as<int32_t>();
  int64_t need = spec.numElements(), got = 0;
  if (raw) {
    std::vector<char> bytes(need);
    in.read(bytes.data(), need);
    got = in.gcount();
    for (int64_t i = 0; i < got; ++i)
      p[i] = static_cast<unsigned char>(bytes[i]);
  } else {
    std::string word;
    while (got < need && in >> word) {
      char *end = nullptr;
      errno = 0;
      long long v = std::strtoll(word.c_str(), &end, 10);
      if (*end || errno || v < INT32_MIN || v > INT32_MAX)
        return Status::fail(path + ": '" + word + "' (value " +
                            std::to_string(got) + ") is not a token id");
      p[got++] = static_cast<int32_t>(v);
    }
  }
  if (got < need)
    return Status::fail(path + ": input '" + spec.name + "' needs " +
                        std::to_string(need) + " values " + spec.describe() +
                        ", the file holds " + std::to_string(got));
  return Status::ok();
}

void summarize(const Tensor &t) {
  std::cout << t.spec().name << ": " << t.spec().describe();
  if (t.spec().dtype == DType::F32) {
    const float *p = t.as<float>();
    int64_t n = t.spec().numElements();
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      sum += p[i];
      lo = std::min(lo, double(p[i]));
      hi = std::max(hi, double(p[i]));
    }
    std::cout << " min " << lo << " max " << hi << " mean " << sum / n;
  }
  std::cout << "\n";
}

/// Mean @loss over consecutive windows of the byte file: tokens are bytes
/// [s, s+L), targets bytes [s+1, s+L+1).
int evaluateBytes(const LoadedModule &module, const FunctionAbi &loss,
                  ParamMap &params, const Options &o) {
  const ArgAbi *tokensAbi = loss.find("tokens");
  const ArgAbi *targetsAbi = loss.find("targets");
  if (!tokensAbi || !targetsAbi || tokensAbi->spec.shape.size() != 2 ||
      tokensAbi->spec.dtype != DType::I32)
    return fail("@loss must take i32 'tokens' and 'targets' of shape [B, L] "
                "(compile with --emit-loss)");
  std::ifstream in(o.evalBytes, std::ios::binary);
  if (!in)
    return fail(o.evalBytes + ": cannot open: " + std::strerror(errno));
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  int64_t batch = tokensAbi->spec.shape[0], len = tokensAbi->spec.shape[1];
  int64_t vocab = vocabOf(loss);
  if (vocab >= 0 && vocab < 256)
    return fail("byte evaluation needs a vocabulary of 256, the model has " +
                std::to_string(vocab));
  int64_t windows = (int64_t(bytes.size()) - 1) / len;
  if (o.maxWindows >= 0)
    windows = std::min(windows, o.maxWindows);
  int64_t steps = windows / batch;
  if (steps == 0)
    return fail(o.evalBytes + ": " + std::to_string(bytes.size()) +
                " bytes hold fewer than one batch of " + std::to_string(batch) +
                " windows of " + std::to_string(len + 1) + " bytes");
  Tensor tokens(tokensAbi->spec), targets(targetsAbi->spec);
  std::vector<Tensor> outputs;
  outputs.reserve(loss.args.size()); // pointers into it must stay valid
  std::vector<Tensor *> args;
  for (const ArgAbi &arg : loss.args) {
    if (arg.kind == ArgKind::Param)
      args.push_back(&params.at(arg.spec.name));
    else if (arg.kind == ArgKind::Output)
      args.push_back(&outputs.emplace_back(arg.spec));
    else
      args.push_back(arg.spec.name == "tokens" ? &tokens : &targets);
  }
  double total = 0;
  auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    for (int64_t b = 0; b < batch; ++b) {
      int64_t offset = (step * batch + b) * len;
      for (int64_t i = 0; i < len; ++i) {
        tokens.as<int32_t>()[b * len + i] = bytes[offset + i];
        targets.as<int32_t>()[b * len + i] = bytes[offset + i + 1];
      }
    }
    if (Status s = module.call(loss, args); !s)
      return fail(s.error);
    total += outputs.back().as<float>()[0];
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  double nats = total / steps;
  std::cout << "evaluated " << steps * batch << " windows of " << len
            << " bytes: loss " << nats << " nats, " << nats / std::log(2.0)
            << " bits per byte (" << steps * batch * len / seconds
            << " tokens/s)\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  std::string error;
  if (!parseArgs(argc, argv, o, error))
    return fail(error);
  retainHeapAcrossCalls();
  std::unique_ptr<LoadedModule> module;
  if (Status s = LoadedModule::open(o.module, module); !s)
    return fail(s.error);
  if (o.list) {
    listModule(*module);
    return 0;
  }
  std::string fnName = o.evalBytes.empty() ? o.function : "loss";
  const FunctionAbi *fn = module->function(fnName);
  if (!fn)
    return fail(o.module + ": no function '" + fnName + "' (see --list)");

  ParamMap params;
  Status loaded = o.paramsPath.empty() ? initParams(*fn, o.seed, params)
                                       : loadParams(*fn, o.paramsPath, params);
  if (!loaded)
    return fail(loaded.error);
  if (!o.savePath.empty())
    if (Status s = saveParams(params, o.savePath); !s)
      return fail(s.error);
  if (!o.evalBytes.empty())
    return evaluateBytes(*module, *fn, params, o);

  std::map<std::string, Tensor> inputs;
  for (const auto &[name, path] : o.inputs) {
    const ArgAbi *arg = fn->find(name);
    if (!arg || arg->kind != ArgKind::Input)
      return fail("@" + fn->name + " has no input '" + name + "' (see --list)");
    Tensor t;
    bool tokenFile = path.rfind("bytes:", 0) == 0 || path.rfind("ids:", 0) == 0;
    if (Status s =
            tokenFile ? readTokenFile(path, arg->spec, t) : readNpy(path, t);
        !s)
      return fail(s.error);
    if (t.spec().dtype != arg->spec.dtype || t.spec().shape != arg->spec.shape)
      return fail(path + ": input '" + name + "' expects " +
                  arg->spec.describe() + ", got " + t.spec().describe());
    if (Status s = checkTokens(t, vocabOf(*fn), path); !s)
      return fail(s.error);
    TensorSpec spec = arg->spec;
    Tensor named(spec);
    std::memcpy(named.data(), t.data(), spec.numBytes());
    inputs[name] = std::move(named);
  }
  std::vector<Tensor> outputs;
  outputs.reserve(fn->args.size()); // pointers into it must stay valid
  std::vector<Tensor *> args;
  for (const ArgAbi &arg : fn->args) {
    if (arg.kind == ArgKind::Input) {
      auto it = inputs.find(arg.spec.name);
      if (it == inputs.end())
        return fail("missing input '" + arg.spec.name + "' (" +
                    arg.spec.describe() + "): pass --input " + arg.spec.name +
                    "=FILE.npy");
      args.push_back(&it->second);
    } else if (arg.kind == ArgKind::Param) {
      args.push_back(&params.at(arg.spec.name));
    } else {
      args.push_back(&outputs.emplace_back(arg.spec));
    }
  }
  for (const auto &[name, path] : o.outputs) {
    if (!fn->findOutput(name))
      return fail("@" + fn->name + " has no output '" + name +
                  "' (see --list)");
  }
  std::vector<double> seconds, deviceSeconds;
  for (int64_t i = 0; i < o.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    if (Status s = module->call(*fn, args); !s)
      return fail(s.error);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    deviceSeconds.push_back(module->lastDeviceSeconds());
  }
  if (o.repeat > 1) {
    std::sort(seconds.begin(), seconds.end());
    std::printf("@%s: %lld calls, median %.3f ms, fastest %.3f ms\n",
                fn->name.c_str(), static_cast<long long>(o.repeat),
                seconds[seconds.size() / 2] * 1e3, seconds.front() * 1e3);
    if (module->onGpu()) {
      std::sort(deviceSeconds.begin(), deviceSeconds.end());
      std::printf("@%s on the GPU without copies: median %.3f ms, fastest "
                  "%.3f ms\n",
                  fn->name.c_str(),
                  deviceSeconds[deviceSeconds.size() / 2] * 1e3,
                  deviceSeconds.front() * 1e3);
    }
  }
  if (module->onGpu()) {
    std::printf("device: %s, peak device memory %.1f MiB\n",
                cuda::deviceName().c_str(), cuda::peakPoolBytes() / 1048576.0);
    if (o.kernels)
      for (const cuda::KernelInfo &k : cuda::kernels())
        std::printf("kernel %s: %d registers, %d bytes local memory\n",
                    k.name.c_str(), k.registers, k.localBytes);
  }
  for (const Tensor &out : outputs) {
    bool written = false;
    for (const auto &[name, path] : o.outputs)
      if (name == out.spec().name) {
        if (Status s = writeNpy(path, out); !s)
          return fail(s.error);
        written = true;
      }
    if (!written)
      summarize(out);
  }
  return 0;
}
