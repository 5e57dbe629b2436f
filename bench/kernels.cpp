//===- kernels.cpp - Timing compiled kernels against baselines ------------===//
//
// Compiles single reformer ops through rf-cpu-pipeline into shared
// libraries for this CPU (as reformer-compile does, one thread),
// times them, and prints one line per case as tab-separated values:
//   case  shape  median_ms  gflops  baseline  baseline_median_ms
//   baseline_gflops  fastest_ms
// Baselines: OpenBLAS cblas_sgemm (loaded with dlopen when present) for the
// matmuls, a register-resident FMA loop for the core's peak.
//
//===----------------------------------------------------------------------===//

#include "reformer/InitReformer.h"
#include "reformer/Runtime/Module.h"
#include "reformer/Target/Cpu/CpuCompiler.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <functional>
#include <immintrin.h>
#include <random>
#include <string>
#include <vector>

using namespace mlir;

namespace {

/// 64-byte aligned storage, as the runtime's tensors are: rows of 16 floats
/// then never straddle two cache lines.
template <typename T> struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U> AlignedAllocator(const AlignedAllocator<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(
        std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64));
  }
  void deallocate(T *p, size_t) { std::free(p); }
  bool operator==(const AlignedAllocator &) const { return true; }
  bool operator!=(const AlignedAllocator &) const { return false; }
};
template <typename T> using Buffer = std::vector<T, AlignedAllocator<T>>;

struct Timing {
  double median, fastest; ///< milliseconds
};

/// Median and fastest of `runs` calls after a warm-up call. The fastest is
/// quoted beside the median: on a shared machine it moves less.
Timing measure(const std::function<void()> &fn, int runs) {
  fn(); // warm up
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count());
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.front()};
}

/// 2 FMA pipes × 16 lanes × 2 flops per cycle, measured, not assumed.
__attribute__((target("avx512f"))) double peakGflops() {
  __m512 acc[12];
  for (auto &a : acc)
    a = _mm512_set1_ps(0.0f);
  __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  const long iters = 20000000;
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; ++i)
    for (auto &a : acc)
      a = _mm512_fmadd_ps(a, x, y);
  double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  float sink = 0;
  for (auto &a : acc)
    sink += _mm512_reduce_add_ps(a);
  if (sink == 12345.f)
    std::puts("");
  return 12.0 * 16 * 2 * iters / s / 1e9;
}

/// A kernel compiled the way reformer-compile does it (object code for this
/// CPU, linked into a shared library without OpenMP) and loaded with
/// dlopen, as reformer-run loads it.
struct Kernel {
  void *handle = nullptr;
  void (*entry)(void **) = nullptr;
};

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "reformer-bench-kernels: %s\n", message.c_str());
  std::exit(1);
}

Kernel compile(const std::string &source) {
  mlir::reformer::registerReformerPassesAndPipelines();
  DialectRegistry registry;
  mlir::reformer::registerReformerDialects(registry);
  MLIRContext context(registry);
  auto module = parseSourceString<ModuleOp>(source, &context);
  if (!module || failed(mlir::reformer::lowerForCpu(*module, {})))
    die("compilation failed");
  std::string error;
  llvm::LLVMContext llvmContext;
  auto llvmModule =
      mlir::reformer::translateForHost(*module, llvmContext, error);
  if (!llvmModule)
    die(error);
  llvm::SmallString<128> dir;
  if (llvm::sys::fs::createUniqueDirectory("reformer-bench", dir))
    die("cannot create a temporary directory");
  std::string library = (dir + "/kernel.so").str();
  if (failed(mlir::reformer::emitSharedLibrary(*llvmModule, library,
                                               /*openmp=*/false, error)))
    die(error);
  Kernel k;
  k.handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!k.handle)
    die(std::string("cannot load the kernel: ") + dlerror());
  k.entry =
      reinterpret_cast<void (*)(void **)>(dlsym(k.handle, "reformer_entry_f"));
  if (!k.entry)
    die("no reformer_entry_f in the kernel");
  llvm::sys::fs::remove_directories(dir);
  return k;
}

using Sgemm = void (*)(int, int, int, int, int, int, float, const float *, int,
                       const float *, int, float, float *, int);

Sgemm openBlas() {
  for (const char *name : {"libopenblas.so.0", "libopenblas.so"})
    if (void *h = dlopen(name, RTLD_NOW))
      if (void *f = dlsym(h, "cblas_sgemm"))
        return reinterpret_cast<Sgemm>(f);
  return nullptr;
}

void matmulCase(int64_t m, int64_t k, int64_t n, int runs) {
  std::string src = llvm::formatv(R"(
    func.func @f(%x: tensor<{0}x{1}xf32>, %w: tensor<{1}x{2}xf32>) -> tensor<{0}x{2}xf32> {
      %y = reformer.dense %x, %w : (tensor<{0}x{1}xf32>, tensor<{1}x{2}xf32>) -> tensor<{0}x{2}xf32>
      return %y : tensor<{0}x{2}xf32>
    })",
                                  m, k, n);
  auto entry = compile(src).entry;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  Buffer<float> a(m * k), b(k * n), c(m * n);
  for (float &x : a)
    x = dist(rng);
  for (float &x : b)
    x = dist(rng);
  void *args[] = {a.data(), b.data(), c.data()};
  Timing timing = measure([&] { entry(args); }, runs);
  double flops = 2.0 * m * n * k;
  std::printf("matmul\t%ldx%ldx%ld\t%.3f\t%.1f", long(m), long(k), long(n),
              timing.median, flops / timing.median / 1e6);
  if (Sgemm sgemm = openBlas()) {
    Timing base = measure(
        [&] {
          sgemm(101, 111, 111, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                c.data(), n);
        },
        runs);
    std::printf("\topenblas_sgemm\t%.3f\t%.1f", base.median,
                flops / base.median / 1e6);
  } else {
    std::printf("\topenblas_sgemm\tn/a\tn/a");
  }
  std::printf("\t%.3f\n", timing.fastest);
}

/// Random [1, H, L, 64] inputs.
Buffer<float> randomRows(int64_t heads, int64_t len, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  Buffer<float> x(heads * len * 64);
  for (float &v : x)
    v = dist(rng);
  return x;
}

/// LSH attention of one layer: B=1, H heads, L positions, D=64, 2L/c
/// buckets (the usual choice: two chunks' worth of queries per bucket),
/// factorized as `buckets` (e.g. "16, 32") when given.
void attentionCase(int64_t heads, int64_t len, int64_t hashes, int64_t chunk,
                   int runs, const std::string &buckets = "") {
  int64_t d = 64;
  std::string t = llvm::formatv("tensor<1x{0}x{1}x{2}xf32>", heads, len, d);
  std::string src = llvm::formatv(
      R"(
    func.func @f(%qk: {0}, %v: {0}) -> {0} {
      %o = reformer.lsh_attention %qk, %v {{n_hashes = {1} : i64,
          n_buckets = array<i64: {2}>, chunk_len = {3} : i64, causal,
          seed = 1 : i64} : ({0}, {0}) -> {0}
      return %o : {0}
    })",
      t, hashes, buckets.empty() ? std::to_string(2 * len / chunk) : buckets,
      chunk);
  auto entry = compile(src).entry;
  Buffer<float> qk = randomRows(heads, len, 2), v = randomRows(heads, len, 3);
  Buffer<float> o(qk.size());
  void *args[] = {qk.data(), v.data(), o.data()};
  Timing timing = measure([&] { entry(args); }, runs);
  // Scores and P·V over a window of 2 chunks for every query of every round.
  double flops = 4.0 * d * 2 * chunk * hashes * len * heads;
  std::string shape =
      llvm::formatv("H{0}_L{1}_R{2}_c{3}", heads, len, hashes, chunk);
  if (!buckets.empty())
    for (char ch : "_b" + buckets)
      if (ch != ' ')
        shape += ch == ',' ? 'x' : ch;
  std::printf("lsh_attention\t%s\t%.3f\t%.1f\t-\t-\t-\t%.3f\n", shape.c_str(),
              timing.median, flops / timing.median / 1e6, timing.fastest);
}

/// Full (dense, causal) attention of the same shape through the same
/// pipeline: local_attention whose one chunk is the whole sequence, so
/// every query scores all L keys (an L × L score block per head).
void fullAttentionCase(int64_t heads, int64_t len, int runs) {
  int64_t d = 64;
  std::string t = llvm::formatv("tensor<1x{0}x{1}x{2}xf32>", heads, len, d);
  std::string src = llvm::formatv(R"(
    func.func @f(%qk: {0}, %v: {0}) -> {0} {
      %o = reformer.local_attention %qk, %qk, %v {{chunk_len = {1} : i64,
          chunks_before = 0 : i64, causal} : ({0}, {0}, {0}) -> {0}
      return %o : {0}
    })",
                                  t, len);
  auto entry = compile(src).entry;
  Buffer<float> qk = randomRows(heads, len, 2), v = randomRows(heads, len, 3);
  Buffer<float> o(qk.size());
  void *args[] = {qk.data(), v.data(), o.data()};
  Timing timing = measure([&] { entry(args); }, runs);
  double flops = 4.0 * d * double(len) * len * heads;
  std::printf("full_attention\tH%ld_L%ld\t%.3f\t%.1f\t-\t-\t-\t%.3f\n",
              long(heads), long(len), timing.median,
              flops / timing.median / 1e6, timing.fastest);
}

/// The attention blocks alone (sorted_chunk_attention: gathers, scores,
/// masks, softmax, P·V) on a given sorted order, without hashing, sorting,
/// unsorting and round combination.
void blockCase(int64_t heads, int64_t len, int64_t hashes, int64_t chunk,
               int runs) {
  int64_t d = 64;
  std::string t = llvm::formatv("tensor<1x{0}x{1}x{2}xf32>", heads, len, d);
  std::string p =
      llvm::formatv("tensor<1x{0}x{1}x{2}xi32>", heads, hashes, len);
  std::string o =
      llvm::formatv("tensor<1x{0}x{1}x{2}x{3}xf32>", heads, hashes, len, d);
  std::string l =
      llvm::formatv("tensor<1x{0}x{1}x{2}xf32>", heads, hashes, len);
  std::string src = llvm::formatv(R"(
    func.func @f(%qk: {0}, %v: {0}, %p: {1}) -> ({2}, {3}) {
      %o, %l = reformer.sorted_chunk_attention %qk, %v, %p {{chunk_len = {4} : i64,
          causal} : ({0}, {0}, {1}) -> ({2}, {3})
      return %o, %l : {2}, {3}
    })",
                                  t, p, o, l, chunk);
  auto entry = compile(src).entry;
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  Buffer<float> qk(heads * len * d), v(qk.size());
  Buffer<float> out(heads * hashes * len * d), lse(heads * hashes * len);
  for (float &x : qk)
    x = dist(rng);
  for (float &x : v)
    x = dist(rng);
  Buffer<int32_t> perm(heads * hashes * len);
  for (int64_t r = 0; r < heads * hashes; ++r) {
    std::vector<int32_t> order(len);
    for (int64_t i = 0; i < len; ++i)
      order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::copy(order.begin(), order.end(), perm.begin() + r * len);
  }
  void *args[] = {qk.data(), v.data(), perm.data(), out.data(), lse.data()};
  Timing timing = measure([&] { entry(args); }, runs);
  double flops = 4.0 * d * 2 * chunk * hashes * len * heads;
  std::printf(
      "attention_blocks\tH%ld_L%ld_R%ld_c%ld\t%.3f\t%.1f\t-\t-\t-\t%.3f\n",
      long(heads), long(len), long(hashes), long(chunk), timing.median,
      flops / timing.median / 1e6, timing.fastest);
}

/// The backward of LSH attention (lsh_attention_grad) on the forward's own
/// output, log-sum-exps and buckets: recomputed scores, then dP, dV, dK and
/// dQ per block.
void attentionGradCase(int64_t heads, int64_t len, int64_t hashes,
                       int64_t chunk, int runs) {
  int64_t d = 64;
  std::string t = llvm::formatv("tensor<1x{0}x{1}x{2}xf32>", heads, len, d);
  std::string l =
      llvm::formatv("tensor<1x{0}x{1}x{2}xf32>", heads, hashes, len);
  std::string bk =
      llvm::formatv("tensor<1x{0}x{1}x{2}xi32>", heads, hashes, len);
  std::string buckets = std::to_string(2 * len / chunk);
  std::string forward = llvm::formatv(R"(
    func.func @f(%qk: {0}, %v: {0}) -> ({0}, {1}, {2}) {
      %o:3 = reformer.lsh_attention %qk, %v {{n_hashes = {3} : i64,
          n_buckets = array<i64: {4}>, chunk_len = {5} : i64, causal,
          seed = 1 : i64} : ({0}, {0}) -> ({0}, {1}, {2})
      return %o#0, %o#1, %o#2 : {0}, {1}, {2}
    })",
                                      t, l, bk, hashes, buckets, chunk);
  std::string backward = llvm::formatv(R"(
    func.func @f(%qk: {0}, %v: {0}, %o: {0}, %dy: {0}, %lse: {1}, %b: {2})
        -> ({0}, {0}) {
      %g:2 = reformer.lsh_attention_grad %qk, %v, %o, %dy lse(%lse) buckets(%b)
          {{n_buckets = array<i64: {3}>, chunk_len = {4} : i64, causal}
          : ({0}, {0}, {0}, {0}, {1}, {2}) -> ({0}, {0})
      return %g#0, %g#1 : {0}, {0}
    })",
                                       t, l, bk, buckets, chunk);
  Buffer<float> qk = randomRows(heads, len, 2), v = randomRows(heads, len, 3),
                dy = randomRows(heads, len, 4);
  Buffer<float> o(qk.size()), lse(heads * hashes * len), dqk(qk.size()),
      dv(qk.size());
  Buffer<int32_t> bucketIds(heads * hashes * len);
  void *fargs[] = {qk.data(), v.data(), o.data(), lse.data(), bucketIds.data()};
  compile(forward).entry(fargs);
  auto entry = compile(backward).entry;
  void *args[] = {qk.data(),  v.data(),         o.data(),   dy.data(),
                  lse.data(), bucketIds.data(), dqk.data(), dv.data()};
  Timing timing = measure([&] { entry(args); }, runs);
  // Five block matmuls (scores, dP, dV, dK, dQ) over a window of 2 chunks.
  double flops = 10.0 * d * 2 * chunk * hashes * len * heads;
  std::printf("lsh_attention_grad\tH%ld_L%ld_R%ld_c%ld\t%.3f\t%.1f\t-\t-\t-\t"
              "%.3f\n",
              long(heads), long(len), long(hashes), long(chunk), timing.median,
              flops / timing.median / 1e6, timing.fastest);
}

} // namespace

int main(int argc, char **argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 7;
  // As reformer-run does: temporaries stay in the heap between calls.
  ::reformer::runtime::retainHeapAcrossCalls();
  std::printf("peak_fma\t1core\t-\t%.1f\t-\t-\t-\t-\n", peakGflops());
  matmulCase(4096, 256, 256, runs);
  matmulCase(4096, 256, 1024, runs);
  matmulCase(4096, 1024, 256, runs);
  attentionCase(4, 4096, 4, 64, runs);
  blockCase(4, 4096, 4, 64, runs);
  attentionGradCase(4, 4096, 4, 64, runs);
  // L = 16384: LSH (2L/c = 512 buckets, factorized) against full attention.
  attentionCase(4, 16384, 4, 64, runs, "16, 32");
  fullAttentionCase(4, 16384, std::min(runs, 3));
  return 0;
}
