//===- Passes.td - Conversions out of the reformer dialect -*- tablegen -*-===//

#ifndef REFORMER_CONVERSION_PASSES_TD
#define REFORMER_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def RfConvertReformerToLinalg : Pass<"rf-convert-reformer-to-linalg"> {
  let summary = "Lower reformer ops to linalg, tensor, scf and memref";
  let description = [{
    Lowers every op of the reformer dialect: layer norm, dense layers and
    the chunked feed-forward (a loop over row chunks, both matmuls with bias
    and activation in its body) to linalg on tensors; embeddings, masks and
    head layouts to gathers, transposes and reshapes; the LSH steps to
    generics (rotations, hashing, unsort, round combine) and a counting sort;
    both attentions to a parallel loop over (batch, head, query chunk) with
    an online softmax per query, so no score matrix is stored. Reversible
    blocks are inlined and `lsh_attention` decomposed on the way. Shapes
    must be static. Ops left unconverted are reported as errors.
  }];
  let options = [
    Option<"maxBlockRun", "max-block-run", "int64_t", "16",
           "most consecutive query chunks one parallel iteration of the "
           "attention blocks walks, sharing its gathered key chunks (the "
           "GPU pipeline uses 1: more iterations, one block each)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def RfRecordAbi : Pass<"rf-record-abi", "::mlir::ModuleOp"> {
  let summary = "Record the C ABI of the module's public functions";
  let description = [{
    Writes the `reformer.abi` module attribute: for every public function,
    its entry point and, in argument order, each input, parameter and output
    with its name, element type and shape (docs/abi.md gives the format).
    Marks tensor arguments read-only for bufferization, since the runtime
    owns and reuses them. Must run while the functions still take and return
    tensors.
  }];
}

def RfEmitEntryPoints : Pass<"rf-emit-entry-points", "::mlir::ModuleOp"> {
  let summary = "Emit C entry points and the ABI manifest in LLVM IR";
  let description = [{
    After conversion to the LLVM dialect with bare-pointer memrefs and
    results as out-parameters: for every function in `reformer.abi`, emits
    `void reformer_entry_<name>(void **args)`, which calls the function with
    `args[0..n)`, and the manifest as the NUL-terminated global
    `reformer_abi`, so a runtime can load the module without MLIR.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def RfExpandStridedCopies : Pass<"rf-expand-strided-copies"> {
  let summary = "Turn strided and large memref.copy into linalg.copy";
  let description = [{
    The LLVM lowering of `memref.copy` calls the `memrefCopy` runtime
    function when a side is not contiguous; compiled modules link no MLIR
    runtime library. This pass rewrites those copies into `linalg.copy`,
    which becomes loops. Contiguous copies of at least `parallel-bytes` are
    rewritten too, so that rf-parallelize-linalg can share them across
    cores (a single memcpy runs on one); smaller ones stay and become
    `llvm.memcpy`.
  }];
  let options = [
    Option<"parallelBytes", "parallel-bytes", "int64_t", "1048576",
           "contiguous copies at least this large become linalg.copy "
           "(0: none)">,
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def RfVectorizeMatmuls : Pass<"rf-vectorize-matmuls"> {
  let summary = "Register-tiled vector code for f32 linalg.matmul on buffers";
  let description = [{
    Replaces every static f32 `linalg.matmul` on memrefs (default indexing
    maps) by a register-blocked kernel: B is packed, one panel of
    `2 × lanes` columns at a time, into a contiguous `K × 2·lanes` buffer;
    for every block of `rows` rows of A the kernel keeps `rows × 2` vector
    accumulators in registers and, per k, does two panel loads, `rows`
    broadcasts of A and `2·rows` FMAs. Panels are independent (an
    `scf.parallel`, so OpenMP can share them across cores). Leftover rows
    use a one-row kernel; a partial last panel uses masked transfers.
  }];
  let options = [
    Option<"lanes", "lanes", "int64_t", "16",
           "f32 lanes of one vector register (16: AVX-512, 8: AVX2)">,
    Option<"rows", "rows", "int64_t", "8",
           "rows of A per register block">,
  ];
  let dependentDialects = [
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def RfUnshareFills : Pass<"rf-unshare-fills"> {
  let summary = "Give every destructive user of a filled tensor its own fill";
  let description = [{
    CSE merges identical `tensor.empty` + `linalg.fill` pairs, so several
    matmuls end up accumulating into one zero-filled tensor; bufferization
    must then copy that tensor for each of them (16 MB apiece for the
    projections at L = 16384), and the matmul kernels no longer see the
    fill that lets them start from zero registers. This pass clones the
    fill (and its `tensor.empty`) in front of every linalg op that uses the
    filled tensor as an output operand, so each gets a fresh buffer written
    once.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def RfParallelizeLinalg : Pass<"rf-parallelize-linalg"> {
  let summary = "Share large linalg ops on buffers across cores";
  let description = [{
    Tiles each linalg op on memrefs (elementwise ops, normalizations, copies,
    transposes, reductions along an inner dimension) along its outermost
    parallel loop of extent > 1 into an `scf.parallel` over `blocks` blocks,
    so `convert-scf-to-openmp` shares it across cores. The inner loops keep
    their full extent: each block's innermost loop stays contiguous for
    LLVM's vectorizer. Ops inside an `scf.parallel` (already shared), ops
    with fewer than `min-iterations` loop iterations (not worth waking the
    threads) are left alone.
    Results are bit-identical: no reduction is split.
  }];
  let options = [
    Option<"minIterations", "min-iterations", "int64_t", "65536",
           "smallest iteration space worth sharing">,
    Option<"blocks", "blocks", "int64_t", "64",
           "blocks the parallel loop is cut into">,
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def RfExpandBf16 : Pass<"rf-expand-bf16"> {
  let summary = "bf16 conversions as integer arithmetic";
  let description = [{
    Rewrites `arith.extf` from and `arith.truncf` to bf16 (scalar and
    vector) into bit casts, shifts and round-to-nearest-even integer
    arithmetic. Without it LLVM calls `__truncsfbf2`/`__truncdfbf2` on CPUs
    without AVX512-BF16 (and always from f64), which the system's libgcc
    does not provide: a bf16 module would not load.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def RfApproximateMath : Pass<"rf-approximate-math"> {
  let summary = "Polynomial approximations of f32 exp, log, tanh and erf";
  let description = [{
    Rewrites f32 (scalar and vector) `math.exp`, `math.log`, `math.tanh` and
    `math.erf` into polynomial approximations (a few ulp), so vector code
    stays vector code: otherwise LLVM turns a vector `exp` into one libm
    call per lane. f64 math (the rotation sampler) is left to libm.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::math::MathDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def RfMapLoopsToGpu : Pass<"rf-map-loops-to-gpu", "::mlir::func::FuncOp"> {
  let summary = "Map a host function's parallel loops onto GPU blocks and "
                "threads, and move its serial memory work into kernels";
  let description = [{
    Prepares a bufferized function for `convert-parallel-loops-to-gpu`, so
    that every read and write of a buffer happens in a kernel and the host
    only allocates, slices and launches:

    - Runs of host ops that touch memory outside any parallel loop (scalar
      stores, serial loops, loads of scalars) are wrapped in a
      single-iteration `scf.parallel`, which becomes a one-thread kernel.
      Launches on one stream run in order, so the serial semantics hold.
    - A parallel loop with a plain body is tiled along its last dimension:
      the tiles map to GPU blocks, the `threads` iterations of a tile to
      threads (guarded where the extent is not a multiple).
    - A parallel loop whose body allocates or holds nested parallel loops
      maps its own dimensions to blocks and runs its body on one thread.
      Scratch buffers its body allocates and frees become slots of one
      host allocation, one slot per iteration (`memref.view`), so kernels
      never call the device-side malloc.

    Grid dimensions beyond three run as loops. Host `scf.for` loops that
    contain parallel loops stay on the host; their bodies are mapped the
    same way.
  }];
  let options = [
    Option<"threads", "threads", "int64_t", "256",
           "threads per block for a plain parallel loop">,
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect",
    "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def RfNameKernels : Pass<"rf-name-kernels", "::mlir::ModuleOp"> {
  let summary = "Name each outlined kernel after its GPU module";
  let description = [{
    `gpu-kernel-outlining` names every kernel of a function alike
    (`forward_kernel`) and tells them apart only by their module
    (`forward_kernel_12`). This pass gives each kernel its module's name, so
    the runtime's errors and register reports, and the files of
    `reformer-compile --emit=ptx`, name one kernel each.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

#endif // REFORMER_CONVERSION_PASSES_TD
