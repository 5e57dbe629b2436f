//===- Module.h - Loading a compiled Reformer module ------------*- C++ -*-===//
//
// A compiled module is a shared library that exports, per function,
// `void reformer_entry_<name>(void **args)` and the manifest `reformer_abi`
// describing every argument (docs/abi.md).
//
//===----------------------------------------------------------------------===//

#ifndef REFORMER_RUNTIME_MODULE_H
#define REFORMER_RUNTIME_MODULE_H

#include "reformer/Runtime/DeviceResidency.h"
#include "reformer/Runtime/Tensor.h"

#include <map>

namespace reformer::runtime {

enum class ArgKind { Input, Param, Output };

struct ArgAbi {
  ArgKind kind;
  TensorSpec spec;
};

struct FunctionAbi {
  std::string name, entry;
  std::vector<ArgAbi> args; ///< In call order: inputs/params, then outputs.
  /// The first argument called `name`; an optimizer's state is both a param
  /// and an output of one name.
  const ArgAbi *find(const std::string &name) const;
  /// The output called `name`.
  const ArgAbi *findOutput(const std::string &name) const;
};

/// Compiled modules allocate their temporaries with malloc on every call.
/// Large blocks would be mmap'ed and unmapped each time, so every call
/// page-faults its temporaries in again (a quarter of an LSH attention
/// layer's time). This keeps freed memory in the process heap instead; the
/// runner calls it once at start-up, embedders may.
void retainHeapAcrossCalls();

/// The features in `required` (comma-separated, as a compiled module's
/// `reformer_cpu_features` lists them) for which `has` is false; names
/// `has` does not know count as missing.
std::vector<std::string>
missingCpuFeatures(const std::string &required,
                   bool (*has)(const std::string &feature));

/// Whether this CPU supports `feature` (a __builtin_cpu_supports name).
bool hostHasCpuFeature(const std::string &feature);

/// Parses manifest text; errors say which line is malformed.
Status parseManifest(const std::string &text, std::vector<FunctionAbi> &out);

class LoadedModule {
public:
  using Entry = void (*)(void **);

  /// dlopens `path` and reads its manifest; refuses a module compiled for
  /// vector features this CPU lacks, or a GPU module where no CUDA driver
  /// or GPU is found.
  static Status open(const std::string &path,
                     std::unique_ptr<LoadedModule> &out);
  ~LoadedModule();

  const std::vector<FunctionAbi> &functions() const { return functions_; }
  const FunctionAbi *function(const std::string &name) const;

  /// Whether the module runs on a CUDA GPU (reformer-compile
  /// --target=cuda).
  bool onGpu() const { return gpu_; }

  /// GPU modules: seconds the last call spent from launching its work to
  /// the GPU finishing it, without the copies in and out.
  double lastDeviceSeconds() const { return deviceSeconds_; }

  /// Calls `function` with one tensor per ABI argument, checking each
  /// tensor's element type and shape first. For a GPU module the tensors
  /// are copied to device memory and the outputs back, except those in
  /// `resident`: they use their kept device copies, copied in only when
  /// stale, and outputs stay on the device until asked for; a failed
  /// kernel is reported by name.
  Status call(const FunctionAbi &function, const std::vector<Tensor *> &args,
              ResidentTensors *resident = nullptr) const;

private:
  Status callOnGpu(const FunctionAbi &function, Entry entry,
                   const std::vector<Tensor *> &args,
                   ResidentTensors *resident) const;

  void *handle_ = nullptr;
  bool gpu_ = false;
  mutable double deviceSeconds_ = 0;
  std::vector<FunctionAbi> functions_;
  std::map<std::string, Entry> entries_;
};

} // namespace reformer::runtime

#endif // REFORMER_RUNTIME_MODULE_H
