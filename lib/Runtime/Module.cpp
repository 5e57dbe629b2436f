//===- Module.cpp - Loading a compiled Reformer module --------------------===//

#include "reformer/Runtime/Module.h"

#include "reformer/Runtime/Cuda.h"

#include <chrono>
#include <dlfcn.h>
#include <malloc.h>
#include <sstream>

namespace reformer::runtime {

const ArgAbi *FunctionAbi::find(const std::string &argName) const {
  for (const ArgAbi &arg : args)
    if (arg.spec.name == argName)
      return &arg;
  return nullptr;
}

const ArgAbi *FunctionAbi::findOutput(const std::string &argName) const {
  for (const ArgAbi &arg : args)
    if (arg.kind == ArgKind::Output && arg.spec.name == argName)
      return &arg;
  return nullptr;
}

void retainHeapAcrossCalls() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

Status parseManifest(const std::string &text, std::vector<FunctionAbi> &out) {
  std::istringstream in(text);
  std::string line;
  int lineNo = 0;
  auto bad = [&](const std::string &why) {
    return Status::fail("manifest line " + std::to_string(lineNo) + " ('" +
                        line + "'): " + why);
  };
  while (std::getline(in, line)) {
    ++lineNo;
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind.empty())
      continue;
    if (lineNo == 1) {
      if (line != "reformer-abi 1")
        return bad("expected 'reformer-abi 1'");
      continue;
    }
    if (kind == "function") {
      FunctionAbi fn;
      size_t count = 0;
      if (!(words >> fn.name >> fn.entry >> count))
        return bad("expected 'function NAME ENTRY COUNT'");
      out.push_back(fn);
      continue;
    }
    if (out.empty())
      return bad("argument before any function");
    ArgAbi arg;
    if (kind == "input")
      arg.kind = ArgKind::Input;
    else if (kind == "param")
      arg.kind = ArgKind::Param;
    else if (kind == "output")
      arg.kind = ArgKind::Output;
    else
      return bad("unknown entry '" + kind + "'");
    std::string dtype, shape;
    if (!(words >> arg.spec.name >> dtype >> shape))
      return bad("expected 'KIND NAME DTYPE SHAPE'");
    std::optional<DType> parsed = parseDType(dtype);
    if (!parsed)
      return bad("unknown element type '" + dtype + "'");
    arg.spec.dtype = *parsed;
    if (shape != "scalar") {
      std::istringstream dims(shape);
      std::string dim;
      while (std::getline(dims, dim, 'x'))
        arg.spec.shape.push_back(std::stoll(dim));
    }
    out.back().args.push_back(arg);
  }
  if (out.empty())
    return Status::fail("the manifest declares no function");
  return Status::ok();
}

std::vector<std::string>
missingCpuFeatures(const std::string &required,
                   bool (*has)(const std::string &feature)) {
  std::vector<std::string> missing;
  size_t start = 0;
  while (start < required.size()) {
    size_t end = required.find(',', start);
    if (end == std::string::npos)
      end = required.size();
    std::string feature = required.substr(start, end - start);
    if (!feature.empty() && !has(feature))
      missing.push_back(feature);
    start = end + 1;
  }
  return missing;
}

bool hostHasCpuFeature(const std::string &feature) {
#if defined(__x86_64__)
  // __builtin_cpu_supports takes string literals only.
#define REFORMER_FEATURE(name)                                                 \
  if (feature == name)                                                         \
    return __builtin_cpu_supports(name);
  REFORMER_FEATURE("sse4.2")
  REFORMER_FEATURE("avx")
  REFORMER_FEATURE("avx2")
  REFORMER_FEATURE("fma")
  REFORMER_FEATURE("bmi2")
  REFORMER_FEATURE("avx512f")
  REFORMER_FEATURE("avx512dq")
  REFORMER_FEATURE("avx512bw")
  REFORMER_FEATURE("avx512vl")
  REFORMER_FEATURE("avx512vnni")
  REFORMER_FEATURE("avx512bf16")
#undef REFORMER_FEATURE
#endif
  return false;
}

Status LoadedModule::open(const std::string &path,
                          std::unique_ptr<LoadedModule> &out) {
  // A bare file name would be searched on the library path, not here.
  std::string where = path.find('/') == std::string::npos ? "./" + path : path;
  void *handle = ::dlopen(where.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return Status::fail(path + ": cannot load: " + ::dlerror());
  std::unique_ptr<LoadedModule> module(new LoadedModule());
  module->handle_ = handle;
  // Code for a wider vector unit than this CPU's would die on its first
  // instruction: refuse it with the reason instead.
  if (auto *features =
          static_cast<const char *>(::dlsym(handle, "reformer_cpu_features"))) {
    std::vector<std::string> missing =
        missingCpuFeatures(features, hostHasCpuFeature);
    if (!missing.empty()) {
      std::string list;
      for (const std::string &f : missing)
        list += (list.empty() ? "" : ", ") + f;
      return Status::fail(path +
                          ": compiled for CPU features this CPU "
                          "lacks (" +
                          list +
                          "); recompile it here, or with reformer-compile "
                          "--cpu=x86-64-v3 for any AVX2 machine");
    }
  }
  // GPU modules mark themselves; their kernel modules were handed to the
  // CUDA runtime while loading, which recorded any failure.
  if (auto *device =
          static_cast<const char *>(::dlsym(handle, "reformer_device"));
      device && std::string(device) == "cuda") {
    if (Status ready = cuda::initialize(); !ready)
      return Status::fail(path + ": compiled for CUDA GPUs, but " +
                          ready.error);
    if (Status loaded = cuda::synchronize(); !loaded)
      return Status::fail(path + ": " + loaded.error);
    module->gpu_ = true;
  }
  auto *manifest = static_cast<const char *>(::dlsym(handle, "reformer_abi"));
  if (!manifest)
    return Status::fail(path + ": not a compiled Reformer module (no "
                               "'reformer_abi' manifest)");
  if (Status s = parseManifest(manifest, module->functions_); !s)
    return Status::fail(path + ": " + s.error);
  for (const FunctionAbi &fn : module->functions_) {
    auto entry = reinterpret_cast<Entry>(::dlsym(handle, fn.entry.c_str()));
    if (!entry)
      return Status::fail(path + ": missing entry point '" + fn.entry + "'");
    module->entries_[fn.name] = entry;
  }
  out = std::move(module);
  return Status::ok();
}

LoadedModule::~LoadedModule() {
  if (handle_)
    ::dlclose(handle_);
}

const FunctionAbi *LoadedModule::function(const std::string &name) const {
  for (const FunctionAbi &fn : functions_)
    if (fn.name == name)
      return &fn;
  return nullptr;
}

Status LoadedModule::call(const FunctionAbi &function,
                          const std::vector<Tensor *> &args,
                          ResidentTensors *resident) const {
  if (args.size() != function.args.size())
    return Status::fail("@" + function.name + " takes " +
                        std::to_string(function.args.size()) +
                        " arguments, got " + std::to_string(args.size()));
  std::vector<void *> pointers;
  for (size_t i = 0; i < args.size(); ++i) {
    const TensorSpec &want = function.args[i].spec;
    const TensorSpec &got = args[i]->spec();
    if (got.dtype != want.dtype || got.shape != want.shape)
      return Status::fail("@" + function.name + " argument '" + want.name +
                          "': expected " + want.describe() + ", got " +
                          got.describe());
    pointers.push_back(args[i]->data());
  }
  if (gpu_)
    return callOnGpu(function, entries_.at(function.name), args, resident);
  entries_.at(function.name)(pointers.data());
  return Status::ok();
}

Status LoadedModule::callOnGpu(const FunctionAbi &function, Entry entry,
                               const std::vector<Tensor *> &args,
                               ResidentTensors *resident) const {
  std::vector<void *> device(args.size(), nullptr);
  // Arguments with a resident copy: neither allocated, freed nor copied
  // back here.
  std::vector<bool> kept(args.size(), false);
  auto releaseAll = [&] {
    for (size_t i = 0; i < args.size(); ++i)
      if (!kept[i])
        cuda::release(device[i]);
  };
  for (size_t i = 0; i < args.size(); ++i) {
    size_t bytes = args[i]->spec().numBytes();
    if (resident && resident->contains(*args[i])) {
      kept[i] = true;
      if (function.args[i].kind == ArgKind::Output) {
        device[i] = resident->forWriting(*args[i]);
        continue;
      }
      if (Status s = resident->forReading(*args[i], device[i]); !s) {
        releaseAll();
        return Status::fail("@" + function.name + ": " + s.error);
      }
      continue;
    }
    device[i] = cuda::allocate(bytes);
    if (!device[i]) {
      releaseAll();
      Status failed = cuda::synchronize();
      return Status::fail("@" + function.name + " argument '" +
                          function.args[i].spec.name + "': " + failed.error);
    }
    if (function.args[i].kind == ArgKind::Output)
      continue;
    if (Status s = cuda::copyToDevice(device[i], args[i]->data(), bytes); !s) {
      releaseAll();
      return Status::fail("@" + function.name + ": " + s.error);
    }
  }
  if (Status copied = cuda::synchronize(); !copied) {
    releaseAll();
    return Status::fail("@" + function.name + ": " + copied.error);
  }
  auto start = std::chrono::steady_clock::now();
  entry(device.data());
  Status done = cuda::synchronize();
  deviceSeconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  for (size_t i = 0; done && i < args.size(); ++i)
    if (function.args[i].kind == ArgKind::Output && !kept[i])
      done = cuda::copyToHost(args[i]->data(), device[i],
                              args[i]->spec().numBytes());
  releaseAll();
  if (!done)
    return Status::fail("@" + function.name + " on the GPU: " + done.error);
  return Status::ok();
}

} // namespace reformer::runtime
