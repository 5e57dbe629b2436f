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
    Option<"vectorLanes", "vector-lanes", "int64_t", "16",
           "f32 lanes of the attention blocks' vectors: 16 fills an AVX-512 "
           "register; the GPU pipeline uses 4 (128-bit accesses) so one "
           "thread's register tiles do not spill">,
    Option<"gradBlockRun", "grad-block-run", "int64_t", "0",
           "most query chunks one parallel iteration of the attention "
           "gradient walks; 0: all of a head's (parallel over batch and "
           "head only, plain adds). Shorter runs give more parallel "
           "iterations, which add into the gradients atomically (the GPU "
           "pipeline uses 8)">,
    Option<"sortTiles", "sort-tiles", "int64_t", "1",
           "tiles the LSH counting sort cuts each sequence into (the largest "
           "divisor of its length up to this): histograms and scatters run "
           "in parallel over tiles, one scan per batch, head and round joins "
           "them (the GPU pipeline uses 16)">,
    Option<"outlineAttention", "outline-attention", "bool", "false",
           "emit the blocks of each LSH attention without duplicate "
           "correction, and of each local attention, in a private function "
           "tagged `reformer.lsh_attention_block` "
           "(`reformer.local_attention_block`), called in its place, so "
           "that a target pass can replace the body (the GPU pipeline's "
           "fused tensor-core kernel)">,
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
    owns and reuses them, and so those of layer functions (`reformer.layer`):
    a layer function that wrote its results over its inputs would return
    them through copies. Must run while the functions still take and return
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
    Private functions with a body get internal linkage: only the entry
    points, the functions they call and the manifest are exported.
    Functions marked `reformer.layer` (a layer's function and its training
    step's forward and backward, called once per layer) are never inlined,
    so that LLVM compiles each once, not once per layer.
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

def RfSerializeMatmulForalls
    : Pass<"rf-serialize-matmul-foralls", "::mlir::func::FuncOp"> {
  let summary = "Run the host's foralls that hold matmuls as serial loops";
  let description = [{
    A bufferized `scf.forall` that the host runs (at the top of its
    function or only inside `scf.for` loops) and whose body holds a
    `linalg.matmul` becomes a nest of
    `scf.for`. For the GPU: `rf-map-loops-to-gpu` would give each iteration
    of the forall one thread, which then walks whole matmuls (the chunked
    FFN's chunks). As a host loop, each iteration's matmuls and elementwise
    ops become kernels of their own. The iterations of a forall are
    independent, so running them in order gives the same result.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect"];
}

def RfLowerMatmulsToMma : Pass<"rf-lower-matmuls-to-mma", "::mlir::func::FuncOp"> {
  let summary = "Lower the host's f32 matmuls to bf16 tensor-core kernels";
  let description = [{
    Replaces each statically shaped f32 `linalg.matmul` on buffers that the
    host runs (at the top of its function or only inside `scf.for` loops),
    whose C shares no buffer with A or B, with a `gpu.launch`
    on the tensor cores, in bf16 with f32 accumulation:

    - a block of 128 threads (4 warps, 2 x 2) computes a 64 x 64 tile of C;
    - per 32 of k it stages the A and B tiles in shared memory as bf16
      (B transposed, rows padded by 8 so fragment reads hit distinct
      banks), reading global memory in coalesced rows;
    - each warp runs 2 x 4 `nvvm.mma.sync` m16n8k16 (bf16 row x col, f32
      accumulators) per 16 of k on its 32 x 32 sub-tile, loading its
      register fragments from the layouts of `MmaFragments.h`;
    - edges that are not multiples of the tile are read as zeros and not
      written; the bounds checks exist only where a size needs them.

    A `linalg.fill` of C with a constant just before the matmul is folded:
    the kernel writes that constant plus the product and never reads C.
    An elementwise `linalg.generic` right after it (frees in between
    aside) that reads C where it writes, and its other buffers by element,
    row or column, is folded too (an epilogue: the chunked FFN's bias and
    activation, a dense layer's bias): the kernel applies its body to each
    element it stores, with the other operands loaded at that element, and
    writes the result to the generic's output. When that output is not C,
    C must be a buffer nothing else reads, and it is not written at all.
    With `emulate-on-cpu` the generic stays a loop of its own (the same
    arithmetic on the same f32 values).
    Other matmuls (dynamic shapes, other element types, C aliasing an
    operand, inside parallel loops or `scf.if`) are left to the loop
    lowering.

    With `emulate-on-cpu`, the same matmuls stay `linalg.matmul` but read
    bf16-rounded copies of A and B: the kernels' numerics in code the CPU
    runs, so tests can hold mixed precision against a reference.
  }];
  let options = [
    Option<"emulateOnCpu", "emulate-on-cpu", "bool", "false",
           "keep the matmuls, with operands rounded to bf16 (for tests on "
           "the CPU)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def RfLowerAttentionToMma
    : Pass<"rf-lower-attention-to-mma", "::mlir::ModuleOp"> {
  let summary = "Fuse each attention and attention gradient into bf16 tensor-core kernels";
  let description = [{
    Replaces the body of every function tagged
    `reformer.lsh_attention_block` or `reformer.local_attention_block` (the
    blocks of one attention, outlined by
    `rf-convert-reformer-to-linalg{outline-attention=1}`) with one
    `gpu.launch`, FlashAttention-2 style. LSH blocks take the shared
    query/key rows, values, sort permutation, optional key mask, outputs
    and log-sum-exps; local blocks take queries, keys (scaled), values,
    optional key mask and outputs.

    - a block per (batch, head, query chunk) with 2·chunk threads, 16 query
      rows per warp; the warp keeps its query rows as bf16 mma fragments;
    - per tile of up to 64 keys of the window (the chunk, its look-back and
      look-ahead chunks: wrapping around the sorted sequence for LSH,
      absent past the sequence's ends for local attention), the block
      gathers the keys' positions, mask biases and (LSH) key
      normalizations, then the keys and the values (transposed) into
      shared memory as bf16 pairs;
    - each warp computes its 16 × tile scores with `nvvm.mma.sync`
      m16n8k16 (f32 accumulators), applies the causal, self (LSH) and
      padding masks, updates its running row maxima and sums (online
      softmax, row reductions with two `gpu.shuffle xor`), rescales its
      outputs and adds P·V with `nvvm.mma.sync`, P re-packed from the
      score registers;
    - at the end each row's output is divided by its sum and written (with
      its log-sum-exp for LSH), in sorted or sequence order.

    Every function tagged `reformer.lsh_attention_grad_block` (the blocks
    of one LSH attention gradient: shared rows, values, sort permutation,
    optional key mask, output gradients, per-round log-sum-exps, round
    weights, do·out and the three zeroed gradients) becomes one kernel with
    keys outside and queries inside:

    - a block per (batch, head, tile of up to 64 sorted key slots), 16
      keys per warp, which normalizes them (two `gpu.shuffle xor` per row)
      and keeps dK and dV as f32 accumulators;
    - per tile of 16 (or 32) queries of every query chunk whose window
      holds the key tile, the block gathers the queries' positions and
      statistics and their rows and output gradients, as rows and
      transposed, into shared memory as bf16 pairs;
    - each warp computes Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, the probabilities
      `exp(s + masks − lse_r)·w_r` and dS, adds P̃ᵀ·dO into dV and dSᵀ·Q
      into dK, and writes dS (re-packed along keys by a shuffle) to shared
      memory, from which the warps add dQ = dS·K to memory atomically;
    - at the end dK and dV are added atomically.

    Every function tagged `reformer.local_attention_grad_block` (queries,
    keys, values, optional key mask, output gradients, scratch for the
    outputs and log-sum-exps, the three zeroed gradients) becomes the fused
    forward (writing the scratch) followed by the same gradient kernel with
    one round, keys scaled by 1/sqrt(d), no self mask and no wrap-around.

    Shapes a kernel does not handle (chunks not a multiple of 16 or over
    128, head dimension not a multiple of 16 or over 128, shared memory
    over 48 KiB) keep their loop body.

    With `emulate-on-cpu`, the same kernel is emitted as a CPU emulation of
    each block: every thread value is a vector with one element per thread,
    memory accesses are gathers and scatters, shuffles are permutations and
    mma.sync is computed from the fragment layouts. Tests run it against a
    reference, which checks the kernel's indexing and bf16 numerics without
    a GPU.
  }];
  let options = [
    Option<"emulateOnCpu", "emulate-on-cpu", "bool", "false",
           "emit the kernel as a CPU emulation of its blocks (for tests)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::func::FuncDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def RfPlaceGradientsInOutputs
    : Pass<"rf-place-gradients-in-outputs", "::mlir::func::FuncOp"> {
  let summary = "Keep each parameter's gradient in that parameter's output "
                "buffer";
  let description = [{
    In a bufferized training step, an optimizer update (a `linalg.generic`
    tagged `reformer.optimizer_update`, inputs `(param, grad, state…)`,
    outputs `(new_param, new_state…)`) reads a gradient that the backward
    accumulated in a buffer of its own, which lives from the gradient's
    first contribution to the update. The update's `new_param` output is a
    buffer of the caller that nothing else touches. When the gradient's
    buffer is a function-level `memref.alloc` of the same type, used only
    before the update (and freed after it), and the output buffer is used
    by the update alone, the gradient is accumulated in the output buffer
    instead: the update then reads each element's gradient and writes the
    new value in its place, and the allocation and its frees go. A step's
    gradients then take no memory of their own, and the updates can wait
    until the end of the step at no cost (`rf-fuse-optimizer-updates`).
  }];
}

def RfForwardCallResults
    : Pass<"rf-forward-call-results", "::mlir::func::FuncOp"> {
  let summary = "Let a call write its output straight into the caller's";
  let description = [{
    After `buffer-results-to-out-params`, a function that returns what a
    call returned allocates a buffer for the call's output and copies it
    into its own output argument before it returns, so the buffer lives
    from the call to the end of the function. When that argument is used by
    the copy alone and the buffer only by calls and the copy, the calls
    write the argument instead and the allocation and the copy go: a
    training step's layer backward functions write new parameters and
    optimizer state straight into the step's outputs, and nothing of the
    kind accumulates with depth.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def RfFuseOptimizerUpdates
    : Pass<"rf-fuse-optimizer-updates", "::mlir::func::FuncOp"> {
  let summary = "Merge a function's optimizer updates into one parallel loop";
  let description = [{
    The lowering of `reformer.adam_update` tags its elementwise
    `linalg.generic` (`reformer.optimizer_update`). On buffers, each such
    update at the top of a function would become a kernel of its own on the
    GPU: one launch per parameter at the end of a training step. This pass
    merges them into one `scf.parallel` over all their elements, in the
    updates' order, which `rf-map-loops-to-gpu` makes one kernel. Each
    iteration finds its parameter with a binary tree of `scf.if` on the
    running element offsets (about log2 of the number of updates compares)
    and runs that update's body on its element, so consecutive threads
    still touch consecutive elements. Multi-dimensional buffers are viewed
    as one-dimensional (`memref.collapse_shape`).

    The merged loop stands where the last update stood, so an earlier
    update moves later: it joins only if nothing between it and the last
    update writes a buffer it reads or writes, or reads a buffer it writes
    (buffers compared by their allocation or function argument, through
    views; an op of unknown effects is taken to read and write its buffer
    operands). Updates are grouped in order so that each loop's kernel
    arguments, estimated from their memref descriptors, fit
    `max-kernel-param-bytes`; a group of one is left alone. PTX ISA 8.1
    allows 32764 bytes on sm_70 and later, but the default is half that:
    LLVM merges the updates' identical bodies into one fed by phis of
    every update's pointers, and the registers that keeps live grow with
    the group (148 at 32 KB for a 12-layer model, 59 at 16 KB). Updates that are not
    statically shaped, identity-mapped and elementwise, or that are nested
    in other ops, are left alone too.
  }];
  let options = [
    Option<"maxKernelParamBytes", "max-kernel-param-bytes", "int64_t",
           "16384", "most bytes of kernel arguments one merged loop may take">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def RfPlanArena : Pass<"rf-plan-arena", "::mlir::func::FuncOp"> {
  let summary = "Place a function's buffers in one arena at planned offsets";
  let description = [{
    Replaces the statically shaped `memref.alloc`s of a bufferized function
    with `memref.view`s into one byte buffer (the arena), allocated when the
    function starts and freed when it returns, and drops their
    `memref.dealloc`s. Offsets are planned from lifetimes known at compile
    time: a buffer allocated at top level lives from its `alloc` to its
    `dealloc`; one allocated inside an `scf.for` or `scf.if` body (and freed
    in the same block) lives for that whole top-level op. Buffers whose
    lifetimes overlap get disjoint bytes; the others may share. Offsets are
    assigned largest buffer first, each at the lowest offset that fits
    (greedy by size), aligned to 64 bytes or the alloc's alignment.

    Left alone: buffers allocated inside parallel loops or GPU launches
    (each iteration needs its own), buffers with dynamic sizes, and buffers
    not freed in the block that allocates them. On the GPU target a call
    then makes one device allocation instead of one per buffer.
  }];
  let options = [
    Option<"report", "report", "bool", "false",
           "emit a remark per function: buffers planned, arena bytes, their "
           "bytes added up, and the most bytes live at once (a lower bound "
           "for any arena)">,
  ];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def RfNameKernels : Pass<"rf-name-kernels", "::mlir::ModuleOp"> {
  let summary = "Name each outlined kernel after its GPU module and role";
  let description = [{
    `gpu-kernel-outlining` names every kernel of a function alike
    (`forward_kernel`) and tells them apart only by their module
    (`forward_kernel_12`). This pass gives each kernel its module's name, so
    the runtime's errors and register reports, and the files of
    `reformer-compile --emit=ptx`, name one kernel each. A kernel whose
    location carries a name (a `NameLoc`, such as the `lsh_attention` loop
    of the attention lowering) takes it in place of `kernel`:
    `forward_lsh_attention_12`, so reports and tests can pick out a kernel
    family by name.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

#endif // REFORMER_CONVERSION_PASSES_TD
