//===- ReformerOps.td - Ops of the reformer dialect --------*- tablegen -*-===//

#ifndef REFORMER_DIALECT_REFORMER_IR_REFORMEROPS_TD
#define REFORMER_DIALECT_REFORMER_IR_REFORMEROPS_TD

include "reformer/Dialect/Reformer/IR/ReformerDialect.td"
include "reformer/Dialect/Reformer/IR/ReformerAttrs.td"
include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Reformer_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Reformer_FloatTensor1D : TensorRankOf<[AnyFloat], [1]>;
def Reformer_FloatTensor2D : TensorRankOf<[AnyFloat], [2]>;
def Reformer_FloatTensor3D : TensorRankOf<[AnyFloat], [3]>;
def Reformer_FloatTensor4D : TensorRankOf<[AnyFloat], [4]>;
def Reformer_FloatTensor5D : TensorRankOf<[AnyFloat], [5]>;
def Reformer_RoundTensor : TensorRankOf<[AnyFloat, I32], [4, 5]>;
def Reformer_F32Tensor0D : 0DTensorOf<[F32]>;
def Reformer_F32Tensor4D : TensorRankOf<[F32], [4]>;
def Reformer_IndexTensor4D : TensorRankOf<[I32], [4]>;
def Reformer_BucketTensor4D : TensorRankOf<[AnySignlessInteger], [4]>;
def Reformer_TokenTensor : TensorRankOf<[AnySignlessInteger], [2]>;
def Reformer_MaskTensor : TensorRankOf<[I1], [2]>;

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def Reformer_LshAttentionOp : Reformer_Op<"lsh_attention",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "shared-QK multi-round LSH self-attention";
  let description = [{
    Computes Reformer LSH attention per batch element `b` and head `h` on the
    shared query/key vectors `x = qk[b, h]` (`L × D`) and the values
    `v[b, h]`:

    1. Hash: for round `r`, `h_r(i) = argmax([x_i R_r ; −x_i R_r])` with the
       head's rotations `R` (`[H, D, n_hashes, sum(n_buckets)/2]`), taken
       from the `rotations` operand or drawn N(0, 1) from `seed` (see
       `reformer.lsh_rotations`). With factorized buckets
       `n_buckets = [f1, f2, …]` each factor hashes its own slice of the
       rotation columns and `h = h1 + f1·h2 + f1·f2·h3 + …`.
    2. Sort every round stably by `(h_r(i), i)`; rounds are laid one after
       another into a sorted sequence of length `n_hashes·L`.
    3. Split it into chunks of `chunk_len`; each query attends to its chunk,
       `chunks_before` previous and `chunks_after` following chunks, wrapping
       around the whole sorted sequence.
    4. Scores `s_ij = x_i · k_j` with `k_j = x_j / sqrt(mean(x_j²) + 1e-6) /
       sqrt(D)`; masks add `−1e9` where `pos(j) > pos(i)` (if `causal`),
       `−1e5` where `pos(j) = pos(i)`, `−1e9` where `mask[b, pos(j)]` is
       false; with `duplicate_correction`, `log N_ij` is subtracted, `N_ij`
       the number of windows in which the pair meets.
    5. Per round: `z_r(i) = logsumexp_j s_ij`, `o_r(i) = Σ_j softmax(s)_ij v_j`,
       then undo the sort.
    6. `out(i) = Σ_r exp(z_r(i) − logsumexp_r z_r(i)) · o_r(i)`.

    For training the op may also return the per-round log-sum-exp `lse`
    (`[B, H, n_hashes, L]`, f32) and `buckets` (`[B, H, n_hashes, L]`, i32),
    in original (unsorted) order; they come together or not at all.

    `L` must be a multiple of `chunk_len` (pad the sequence and mask the
    padding), and the window `chunks_before + 1 + chunks_after` must fit in
    the `n_hashes·L/chunk_len` chunks of the sorted sequence.

    Example:

    ```mlir
    %out = reformer.lsh_attention %qk, %v {chunk_len = 64 : i64,
        n_buckets = array<i64: 32>, n_hashes = 2 : i64, seed = 7 : i64}
        : (tensor<1x4x1024x64xf32>, tensor<1x4x1024x64xf32>)
        -> tensor<1x4x1024x64xf32>
    ```
  }];
  let arguments = (ins Reformer_FloatTensor4D:$qk,
                       Reformer_FloatTensor4D:$v,
                       Optional<Reformer_FloatTensor4D>:$rotations,
                       Optional<Reformer_MaskTensor>:$mask,
                       I64Attr:$n_hashes,
                       DenseI64ArrayAttr:$n_buckets,
                       I64Attr:$chunk_len,
                       DefaultValuedAttr<I64Attr, "1">:$chunks_before,
                       DefaultValuedAttr<I64Attr, "0">:$chunks_after,
                       UnitAttr:$causal,
                       UnitAttr:$duplicate_correction,
                       OptionalAttr<I64Attr>:$seed);
  // The training results are variadic, not two optionals, so the custom
  // format can infer how many there are from the function type.
  let results = (outs Reformer_FloatTensor4D:$out,
                      Variadic<AnyRankedTensor>:$training_results);
  let assemblyFormat = [{
    $qk `,` $v (`rotations` `(` $rotations^ `)`)? (`mask` `(` $mask^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// Total number of buckets: the product of the factors.
    int64_t getNumBucketsTotal();
    /// Width of the rotation matrix: sum of the factors / 2.
    int64_t getRotationWidth();
    /// The per-round log-sum-exp, or null without training results.
    Value getLse() {
      return getTrainingResults().empty() ? Value() : getTrainingResults()[0];
    }
    /// The per-round buckets, or null without training results.
    Value getBuckets() {
      return getTrainingResults().size() < 2 ? Value()
                                             : getTrainingResults()[1];
    }
  }];
}

def Reformer_LocalAttentionOp : Reformer_Op<"local_attention", [Pure]> {
  let summary = "chunked full (local) attention";
  let description = [{
    Softmax attention within fixed chunks of the sequence, as in trax's local
    attention layers: per batch element and head, position `i` in chunk
    `c = i / chunk_len` attends to all positions of chunks
    `c − chunks_before … c + chunks_after` (no wrap-around; chunks outside
    the sequence are absent), with scores `s_ij = q_i · k_j / sqrt(D)`,
    `−1e9` added where `j > i` if `causal` and where `mask[b, j]` is false.
    `out(i) = Σ_j softmax(s)_ij v_j`. `L` must be a multiple of `chunk_len`.
  }];
  let arguments = (ins Reformer_FloatTensor4D:$q,
                       Reformer_FloatTensor4D:$k,
                       Reformer_FloatTensor4D:$v,
                       Optional<Reformer_MaskTensor>:$mask,
                       I64Attr:$chunk_len,
                       DefaultValuedAttr<I64Attr, "1">:$chunks_before,
                       DefaultValuedAttr<I64Attr, "0">:$chunks_after,
                       UnitAttr:$causal);
  let results = (outs Reformer_FloatTensor4D:$out);
  let assemblyFormat = [{
    $q `,` $k `,` $v (`mask` `(` $mask^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// Steps of LSH attention
//===----------------------------------------------------------------------===//

def Reformer_LshRotationsOp : Reformer_Op<"lsh_rotations", [Pure]> {
  let summary = "random rotations for LSH, drawn from a seed";
  let description = [{
    Returns `R[h, d, r, k] ~ N(0, 1)`, drawn deterministically from `seed`:
    element number `n` (row-major over `[H, D, R, K]`) is the Box–Muller
    transform of the two uniforms of counters `2n` and `2n + 1` of a
    SplitMix64 stream keyed by `seed` (docs/lsh-rotations.md gives the exact
    recipe). The same seed gives the same rotations on every target.

    The seed is the `seed` attribute or, where it is known only at run
    time, the 0-D i64 operand: a function shared by layers that differ only
    in their seed takes it as an argument.

    ```mlir
    %r = reformer.lsh_rotations {seed = 3 : i64} : tensor<4x64x2x16xf32>
    %s = reformer.lsh_rotations seed(%seed : tensor<i64>) : tensor<4x64x2x16xf32>
    ```
  }];
  let arguments = (ins Optional<0DTensorOf<[I64]>>:$seed_value,
                       OptionalAttr<I64Attr>:$seed);
  let results = (outs Reformer_FloatTensor4D:$result);
  let assemblyFormat =
      "(`seed` `(` $seed_value^ `:` type($seed_value) `)`)? attr-dict `:` "
      "type($result)";
  let hasVerifier = 1;
}

def Reformer_LshHashOp : Reformer_Op<"lsh_hash", [Pure]> {
  let summary = "hash every position into a bucket per round";
  let description = [{
    `buckets[b, h, r, i] = argmax([x_i R_r ; −x_i R_r])` with
    `x = qk[b, h]` and `R_r = rotations[h, :, r, :]`; ties go to the lowest
    index. With factorized `n_buckets = [f1, f2, …]`, factor `t` uses
    rotation columns `[Σ_{s<t} f_s/2, Σ_{s≤t} f_s/2)` and the bucket is
    `h1 + f1·h2 + f1·f2·h3 + …`.
  }];
  let arguments = (ins Reformer_FloatTensor4D:$qk,
                       Reformer_FloatTensor4D:$rotations,
                       DenseI64ArrayAttr:$n_buckets);
  let results = (outs Reformer_IndexTensor4D:$buckets);
  let assemblyFormat = [{
    $qk `,` $rotations attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_BucketSortOp : Reformer_Op<"bucket_sort", [Pure]> {
  let summary = "stable sort of positions by bucket, per round";
  let description = [{
    For every `(b, h, r)`, orders the positions `i` by `(buckets[i], i)`.
    `perm[b, h, r, s]` is the position at sorted slot `s`;
    `inverse[b, h, r, i]` is the sorted slot of position `i`
    (`perm[inverse[i]] = i`). Buckets lie in `[0, num_buckets)`; a stable
    counting sort does this in O(L).
  }];
  let arguments = (ins Reformer_BucketTensor4D:$buckets, I64Attr:$num_buckets);
  let results = (outs Reformer_IndexTensor4D:$perm,
                      Reformer_IndexTensor4D:$inverse);
  let assemblyFormat = [{
    $buckets attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_SortedChunkAttentionOp : Reformer_Op<"sorted_chunk_attention",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "attention over chunks of the bucket-sorted sequence";
  let description = [{
    Steps 3–5 of `reformer.lsh_attention` before the unsort. The sorted
    sequence of length `R·L` is `perm` read round after round; slot
    `t = r·L + s` holds position `perm[b, h, r, s]`. Each query slot attends
    to the keys of its chunk, `chunks_before` previous and `chunks_after`
    following chunks (wrapping around `R·L`), with the scores and masks of
    `reformer.lsh_attention`. Results, in sorted order:
    `out[b, h, r, s] = o_r(perm[s])` and `lse[b, h, r, s] = z_r(perm[s])`.
    With `sequence_order` the results are written in sequence order instead,
    `out[b, h, r, i] = o_r(i)` and `lse[b, h, r, i] = z_r(i)`: the unsort
    folded into the write (canonicalization does this when every use of the
    results is a `reformer.unsort` by the matching inverse permutation).
    `duplicate_correction` needs the `inverse` permutation to count, for
    each pair, the windows in which it meets.
  }];
  let arguments = (ins Reformer_FloatTensor4D:$qk,
                       Reformer_FloatTensor4D:$v,
                       Reformer_IndexTensor4D:$perm,
                       Optional<Reformer_IndexTensor4D>:$inverse,
                       Optional<Reformer_MaskTensor>:$mask,
                       I64Attr:$chunk_len,
                       DefaultValuedAttr<I64Attr, "1">:$chunks_before,
                       DefaultValuedAttr<I64Attr, "0">:$chunks_after,
                       UnitAttr:$causal,
                       UnitAttr:$duplicate_correction,
                       UnitAttr:$sequence_order);
  let results = (outs Reformer_FloatTensor5D:$out, Reformer_F32Tensor4D:$lse);
  let assemblyFormat = [{
    $qk `,` $v `,` $perm (`inverse` `(` $inverse^ `)`)?
    (`mask` `(` $mask^ `)`)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def Reformer_UnsortOp : Reformer_Op<"unsort", [Pure]> {
  let summary = "undo the bucket sort of per-round values";
  let description = [{
    `result[b, h, r, i, …] = input[b, h, r, inverse[b, h, r, i], …]`: moves
    per-round values (`[B, H, R, L]` or `[B, H, R, L, D]`) from sorted order
    back to sequence order.
  }];
  let arguments = (ins Reformer_RoundTensor:$input,
                       Reformer_IndexTensor4D:$inverse);
  let results = (outs Reformer_RoundTensor:$result);
  let assemblyFormat = [{
    $input `,` $inverse attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_CombineRoundsOp : Reformer_Op<"combine_rounds", [Pure]> {
  let summary = "weighted sum of the per-round attention outputs";
  let description = [{
    `result[b, h, i] = Σ_r w_r · out[b, h, r, i]` with
    `w_r = exp(lse[b, h, r, i] − logsumexp_r lse[b, h, r, i])`: the rounds'
    softmax denominators make the combination equal to one softmax over the
    union of the rounds' keys.
  }];
  let arguments = (ins Reformer_FloatTensor5D:$out, Reformer_F32Tensor4D:$lse);
  let results = (outs Reformer_FloatTensor4D:$result);
  let assemblyFormat = [{
    $out `,` $lse attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def Reformer_LengthMaskOp : Reformer_Op<"length_mask", [Pure]> {
  let summary = "padding mask of a padded sequence";
  let description = [{
    `result[b, i] = i < length`: true on the first `length` positions, false
    on the padding after them.
  }];
  let arguments = (ins I64Attr:$length);
  let results = (outs Reformer_MaskTensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Residual structure and feed-forward
//===----------------------------------------------------------------------===//

def Reformer_ReversibleOp : Reformer_Op<"reversible",
    [RecursiveMemoryEffects, AllTypesMatch<["x1", "x2", "y1", "y2"]>]> {
  let summary = "reversible residual block (RevNet)";
  let description = [{
    `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)` with `F` the region `f` and `G` the
    region `g`; each takes one tensor of the inputs' type and yields one of
    the same type. Because `x2 = y2 − G(y1)` and `x1 = y1 − F(x2)`, training
    recomputes a block's inputs from its outputs instead of storing them.
    In a Reformer, `F` is layer norm → attention and `G` is layer norm →
    chunked feed-forward.
  }];
  let arguments = (ins Reformer_FloatTensor:$x1, Reformer_FloatTensor:$x2);
  let results = (outs Reformer_FloatTensor:$y1, Reformer_FloatTensor:$y2);
  let regions = (region SizedRegion<1>:$f, SizedRegion<1>:$g);
  let assemblyFormat = [{
    $x1 `,` $x2 `:` type($x1) attr-dict-with-keyword `f` $f `g` $g
  }];
  let hasRegionVerifier = 1;
}

def Reformer_YieldOp : Reformer_Op<"yield",
    [Pure, Terminator, ReturnLike, HasParent<"ReversibleOp">]> {
  let summary = "yields the value of a residual function";
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

def Reformer_ChunkedFfnOp : Reformer_Op<"chunked_ffn", [Pure]> {
  let summary = "position-wise feed-forward layer applied in chunks";
  let description = [{
    `out = act(x W1 + b1) W2 + b2` for every position of `x` (`[B, L, M]`,
    `W1: [M, F]`, `b1: [F]`, `W2: [F, M]`, `b2: [M]`), evaluated `chunk`
    positions at a time so that the `L × F` intermediate never exists whole.
    The result does not depend on `chunk` beyond rounding.
  }];
  let arguments = (ins Reformer_FloatTensor3D:$input,
                       Reformer_FloatTensor2D:$w1,
                       Reformer_FloatTensor1D:$b1,
                       Reformer_FloatTensor2D:$w2,
                       Reformer_FloatTensor1D:$b2,
                       I64Attr:$chunk,
                       Reformer_ActivationAttr:$activation);
  let results = (outs Reformer_FloatTensor3D:$result);
  let assemblyFormat = [{
    $input `,` $w1 `,` $b1 `,` $w2 `,` $b2 attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Around the blocks
//===----------------------------------------------------------------------===//

def Reformer_DropoutOp : Reformer_Op<"dropout", [Pure]> {
  let summary = "dropout, deterministic in its seed";
  let description = [{
    Without `seed` (inference), the identity: it folds away. With a 0-D i64
    `seed`, element `n` (row-major index) is kept when
    `u(seed, salt, n) ≥ rate` and then scaled by `1 / (1 − rate)`, else set
    to zero, where `u` is the top 24 bits, over 2²⁴, of
    `splitmix64(seed · 0x9E3779B97F4A7C15 ⊕ salt · 0xD1B54A32D192ED03 ⊕ n)`
    (`splitmix64(z)`: `z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
    z *= 0x94D049BB133111EB; z ^= z >> 31`, on 64-bit wrapping integers).
    The same seed and salt give the same mask on every call: a training
    step's recomputation sees exactly the forward's mask, and the gradient
    is the same dropout applied to the result's gradient. The model builder
    gives every dropout a distinct `salt`; the training step supplies one
    seed per step.
  }];
  let arguments = (ins Reformer_FloatTensor:$input,
                       Optional<0DTensorOf<[I64]>>:$seed,
                       F64Attr:$rate,
                       DefaultValuedAttr<I64Attr, "0">:$salt);
  let results = (outs Reformer_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`seed` `(` $seed^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}


def Reformer_EmbeddingOp : Reformer_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    `result[b, i] = table[tokens[b, i]]` (`tokens: [B, L]`,
    `table: [V, M]`). Token ids outside `[0, V)` are an error at run time.
  }];
  let arguments = (ins Reformer_TokenTensor:$tokens,
                       Reformer_FloatTensor2D:$table);
  let results = (outs Reformer_FloatTensor3D:$result);
  let assemblyFormat = [{
    $tokens `,` $table attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_AxialPosEmbeddingOp : Reformer_Op<"axial_pos_embedding", [Pure]> {
  let summary = "adds axial position embeddings";
  let description = [{
    With weights `E_t: [n_t, d_t]` (`Σ d_t = M`, `Π n_t ≥ L`), position `p`
    written in mixed radix `(p_1, …, p_k)` over `(n_1, …, n_k)` (row-major,
    `p_1` most significant) gets the embedding `concat_t E_t[p_t]`;
    `result[b, p] = input[b, p] + concat_t E_t[p_t]` (trax / Hugging Face
    axial position embeddings).
  }];
  let arguments = (ins Reformer_FloatTensor3D:$input,
                       Variadic<Reformer_FloatTensor2D>:$weights);
  let results = (outs Reformer_FloatTensor3D:$result);
  let assemblyFormat = [{
    $input (`,` $weights^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_LayerNormOp : Reformer_Op<"layer_norm", [Pure]> {
  let summary = "layer normalization over the last dimension";
  let description = [{
    `result = (x − mean(x)) / sqrt(var(x) + epsilon) · gamma + beta` over the
    last dimension (biased variance).
  }];
  let arguments = (ins Reformer_FloatTensor:$input,
                       Reformer_FloatTensor1D:$gamma,
                       Reformer_FloatTensor1D:$beta,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$epsilon);
  let results = (outs Reformer_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_DenseOp : Reformer_Op<"dense", [Pure]> {
  let summary = "dense (linear) layer over the last dimension";
  let description = [{
    `result[…, n] = Σ_k input[…, k] · weight[k, n] (+ bias[n])`.
  }];
  let arguments = (ins Reformer_FloatTensor:$input,
                       Reformer_FloatTensor2D:$weight,
                       Optional<Reformer_FloatTensor1D>:$bias);
  let results = (outs Reformer_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_SplitHeadsOp : Reformer_Op<"split_heads", [Pure]> {
  let summary = "[B, L, H·D] → [B, H, L, D]";
  let description = [{
    `result[b, h, i, d] = input[b, i, h·D + d]`; the heads and head
    dimension are read from the result type.
  }];
  let arguments = (ins Reformer_FloatTensor3D:$input);
  let results = (outs Reformer_FloatTensor4D:$result);
  let assemblyFormat = [{
    $input attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Reformer_MergeHeadsOp : Reformer_Op<"merge_heads", [Pure]> {
  let summary = "[B, H, L, D] → [B, L, H·D]";
  let description = [{
    `result[b, i, h·D + d] = input[b, h, i, d]`, the inverse of
    `reformer.split_heads`.
  }];
  let arguments = (ins Reformer_FloatTensor4D:$input);
  let results = (outs Reformer_FloatTensor3D:$result);
  let assemblyFormat = [{
    $input attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Reformer_SoftmaxCrossEntropyOp : Reformer_Op<"softmax_cross_entropy",
    [Pure]> {
  let summary = "mean softmax cross-entropy of next-token logits";
  let description = [{
    `loss = Σ_{b,i} w[b,i] · (logsumexp(logits[b,i,:]) −
    logits[b,i,targets[b,i]]) / Σ_{b,i} w[b,i]`, with `w` the optional
    `weights` (all ones without them). The result is in nats.
  }];
  let arguments = (ins Reformer_FloatTensor3D:$logits,
                       Reformer_TokenTensor:$targets,
                       Optional<Reformer_FloatTensor2D>:$weights);
  let results = (outs Reformer_F32Tensor0D:$loss);
  let assemblyFormat = [{
    $logits `,` $targets (`weights` `(` $weights^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Gradients and optimizer updates (the training step)
//===----------------------------------------------------------------------===//

def Reformer_DenseGradOp : Reformer_Op<"dense_grad", [Pure]> {
  let summary = "gradients of reformer.dense";
  let description = [{
    Given `result_grad = ∂loss/∂result` of `result = input · weight (+ bias)`:
    `input_grad = result_grad · weightᵀ`,
    `weight_grad[k, n] = Σ_rows input[…, k] · result_grad[…, n]` and
    `bias_grad[n] = Σ_rows result_grad[…, n]` (rows: every leading index).
    Gradients are f32 whatever the storage type of the operands.
  }];
  let arguments = (ins Reformer_FloatTensor:$input,
                       Reformer_FloatTensor2D:$weight,
                       Reformer_FloatTensor:$result_grad);
  let results = (outs Reformer_FloatTensor:$input_grad,
                      Reformer_FloatTensor2D:$weight_grad,
                      Reformer_FloatTensor1D:$bias_grad);
  let assemblyFormat = [{
    $input `,` $weight `,` $result_grad attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_LayerNormGradOp : Reformer_Op<"layer_norm_grad", [Pure]> {
  let summary = "gradients of reformer.layer_norm";
  let description = [{
    With `x̂ = (x − mean(x))·r`, `r = (var(x) + epsilon)^(−1/2)` over the
    last dimension (n elements) and `g = result_grad · gamma`:
    `input_grad = r · (g − mean(g) − x̂ · mean(g · x̂))`,
    `gamma_grad = Σ_rows result_grad · x̂`, `beta_grad = Σ_rows result_grad`.
    The statistics are recomputed from `input`; nothing of the forward is
    stored.
  }];
  let arguments = (ins Reformer_FloatTensor:$input,
                       Reformer_FloatTensor1D:$gamma,
                       Reformer_FloatTensor:$result_grad,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$epsilon);
  let results = (outs Reformer_FloatTensor:$input_grad,
                      Reformer_FloatTensor1D:$gamma_grad,
                      Reformer_FloatTensor1D:$beta_grad);
  let assemblyFormat = [{
    $input `,` $gamma `,` $result_grad attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_ChunkedFfnGradOp : Reformer_Op<"chunked_ffn_grad", [Pure]> {
  let summary = "gradients of reformer.chunked_ffn, chunk by chunk";
  let description = [{
    Given `result_grad` of `out = act(x W1 + b1) W2 + b2`, chunk by chunk
    (`chunk` positions at a time; the pre-activation `a = x W1 + b1` of a
    chunk is recomputed, never stored): `w2_grad += act(a)ᵀ · dy`,
    `b2_grad += Σ dy`, `da = (dy · W2ᵀ) ⊙ act'(a)`, `w1_grad += xᵀ · da`,
    `b1_grad += Σ da`, `input_grad = da · W1ᵀ`. Only a `chunk × F`
    intermediate exists at a time. Gradients are f32.
  }];
  let arguments = (ins Reformer_FloatTensor3D:$input,
                       Reformer_FloatTensor2D:$w1,
                       Reformer_FloatTensor1D:$b1,
                       Reformer_FloatTensor2D:$w2,
                       Reformer_FloatTensor3D:$result_grad,
                       I64Attr:$chunk,
                       Reformer_ActivationAttr:$activation);
  let results = (outs Reformer_FloatTensor3D:$input_grad,
                      Reformer_FloatTensor2D:$w1_grad,
                      Reformer_FloatTensor1D:$b1_grad,
                      Reformer_FloatTensor2D:$w2_grad,
                      Reformer_FloatTensor1D:$b2_grad);
  let assemblyFormat = [{
    $input `,` $w1 `,` $b1 `,` $w2 `,` $result_grad attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_SoftmaxCrossEntropyGradOp
    : Reformer_Op<"softmax_cross_entropy_grad", [Pure]> {
  let summary = "gradient of reformer.softmax_cross_entropy";
  let description = [{
    `∂loss/∂logits[b, i, v] = w[b, i] / Σ w · (softmax(logits[b, i, :])[v] −
    [v = targets[b, i]])` for the mean loss of `reformer.softmax_cross_entropy`
    with the same operands (`w` all ones without `weights`).
  }];
  let arguments = (ins Reformer_FloatTensor3D:$logits,
                       Reformer_TokenTensor:$targets,
                       Optional<Reformer_FloatTensor2D>:$weights);
  let results = (outs Reformer_FloatTensor3D:$logits_grad);
  let assemblyFormat = [{
    $logits `,` $targets (`weights` `(` $weights^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_LshAttentionGradOp : Reformer_Op<"lsh_attention_grad", [Pure]> {
  let summary = "gradients of reformer.lsh_attention from its stored buckets";
  let description = [{
    Given `result_grad = ∂loss/∂out` of `out = reformer.lsh_attention(qk, v)`
    and that op's training results — the per-round log-sum-exp `lse` and
    the `buckets` (`[B, H, n_hashes, L]`, sequence order) — returns
    `qk_grad` and `v_grad` (f32). No rotation is drawn and nothing is
    re-hashed: the sort is rebuilt from `buckets`, and each (round, chunk)
    block recomputes its scores. With round weights
    `w_r(i) = exp(z_r(i) − logsumexp_r z_r(i))` and the block softmax `p`:
    `dv_j += Σ_i p_ij w_r(i) do(i)`,
    `ds_ij = p_ij w_r(i) (do(i)·v_j − do(i)·out(i))` — which carries the
    `dz_r` term of the round weights — `dx_i += Σ_j ds_ij k_j`, and the key
    side `dk_j = Σ_i ds_ij x_i` goes back through the key normalization.
    Attributes and `mask` must be those of the forward op.
  }];
  let arguments = (ins Reformer_FloatTensor4D:$qk,
                       Reformer_FloatTensor4D:$v,
                       Reformer_FloatTensor4D:$out,
                       Reformer_FloatTensor4D:$result_grad,
                       Reformer_F32Tensor4D:$lse,
                       Reformer_IndexTensor4D:$buckets,
                       Optional<Reformer_MaskTensor>:$mask,
                       DenseI64ArrayAttr:$n_buckets,
                       I64Attr:$chunk_len,
                       DefaultValuedAttr<I64Attr, "1">:$chunks_before,
                       DefaultValuedAttr<I64Attr, "0">:$chunks_after,
                       UnitAttr:$causal,
                       UnitAttr:$duplicate_correction);
  let results = (outs Reformer_F32Tensor4D:$qk_grad,
                      Reformer_F32Tensor4D:$v_grad);
  let assemblyFormat = [{
    $qk `,` $v `,` $out `,` $result_grad `lse` `(` $lse `)`
    `buckets` `(` $buckets `)` (`mask` `(` $mask^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Total number of buckets: the product of the factors.
    int64_t getNumBucketsTotal();
  }];
}

def Reformer_LocalAttentionGradOp : Reformer_Op<"local_attention_grad",
    [Pure]> {
  let summary = "gradients of reformer.local_attention";
  let description = [{
    Given `result_grad` of `out = reformer.local_attention(q, k, v)` with
    the same attributes and mask, returns `q_grad`, `k_grad` and `v_grad`
    (f32). Each chunk's scores and softmax are recomputed (a query's keys
    all lie in its window): `dv += pᵀ do`, `ds = p ⊙ (do vᵀ − rowsum(p ⊙
    do vᵀ))`, `dq = ds k / sqrt(D)`, `dk = dsᵀ q / sqrt(D)`.
  }];
  let arguments = (ins Reformer_FloatTensor4D:$q,
                       Reformer_FloatTensor4D:$k,
                       Reformer_FloatTensor4D:$v,
                       Reformer_FloatTensor4D:$result_grad,
                       Optional<Reformer_MaskTensor>:$mask,
                       I64Attr:$chunk_len,
                       DefaultValuedAttr<I64Attr, "1">:$chunks_before,
                       DefaultValuedAttr<I64Attr, "0">:$chunks_after,
                       UnitAttr:$causal);
  let results = (outs Reformer_F32Tensor4D:$q_grad,
                      Reformer_F32Tensor4D:$k_grad,
                      Reformer_F32Tensor4D:$v_grad);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $result_grad (`mask` `(` $mask^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_EmbeddingGradOp : Reformer_Op<"embedding_grad", [Pure]> {
  let summary = "gradient of reformer.embedding";
  let description = [{
    `table_grad[t] = Σ_{b, i : tokens[b, i] = t} result_grad[b, i]`
    (`table_grad: [V, M]`, f32; rows of tokens that never occur are zero).
  }];
  let arguments = (ins Reformer_TokenTensor:$tokens,
                       Reformer_FloatTensor3D:$result_grad);
  let results = (outs Reformer_FloatTensor2D:$table_grad);
  let assemblyFormat = [{
    $tokens `,` $result_grad attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_AxialPosEmbeddingGradOp
    : Reformer_Op<"axial_pos_embedding_grad", [Pure]> {
  let summary = "gradients of the axial position weights";
  let description = [{
    For `result = input + concat_t E_t[p_t]` of
    `reformer.axial_pos_embedding`: `E_t_grad[n, e] = Σ_b Σ_{p < L : p_t = n}
    result_grad[b, p, off_t + e]` (`off_t` the width of the weights before
    `t`; f32). The input's gradient is `result_grad` itself.
  }];
  let arguments = (ins Reformer_FloatTensor3D:$result_grad);
  let results = (outs Variadic<Reformer_FloatTensor2D>:$weight_grads);
  let assemblyFormat = [{
    $result_grad attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_ClipScaleOp : Reformer_Op<"clip_scale", [Pure]> {
  let summary = "the factor that clips gradients to a global norm";
  let description = [{
    `scale = min(1, max_norm / (sqrt(Σ_t Σ_i grads_t[i]²) + 1e-6))` over
    every element of every operand: multiplying all gradients by it clips
    their global L2 norm to `max_norm` (as `optax.clip_by_global_norm` and
    trax do). A 0-D f32 tensor.
  }];
  let arguments = (ins Variadic<Reformer_FloatTensor>:$grads,
                       F64Attr:$max_norm);
  let results = (outs Reformer_F32Tensor0D:$scale);
  let assemblyFormat = [{
    $grads attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_AdamUpdateOp : Reformer_Op<"adam_update", [Pure]> {
  let summary = "one Adam / AdamW step of a parameter";
  let description = [{
    With `t = step` (counted from 1), the learning rate `lr` of this step
    (the schedule is computed by the caller) and `g = scale · grad` (`scale`
    an optional 0-D factor, e.g. from `reformer.clip_scale`; 1 without):
    `m' = β1·m + (1 − β1)·g`, `v' = β2·v + (1 − β2)·g²`,
    `param' = param − lr · (m'/(1 − β1ᵗ) / (sqrt(v'/(1 − β2ᵗ)) + epsilon) +
    weight_decay · param)` — decoupled weight decay (AdamW); Adam with
    `weight_decay = 0`. Moments are f32.
  }];
  let arguments = (ins Reformer_FloatTensor:$param,
                       Reformer_FloatTensor:$grad,
                       Reformer_FloatTensor:$m,
                       Reformer_FloatTensor:$v,
                       Reformer_F32Tensor0D:$lr,
                       Reformer_F32Tensor0D:$step,
                       Optional<Reformer_F32Tensor0D>:$scale,
                       DefaultValuedAttr<F64Attr, "0.9">:$beta1,
                       DefaultValuedAttr<F64Attr, "0.999">:$beta2,
                       DefaultValuedAttr<F64Attr, "1.0e-8">:$epsilon,
                       DefaultValuedAttr<F64Attr, "0.0">:$weight_decay);
  let results = (outs Reformer_FloatTensor:$new_param,
                      Reformer_FloatTensor:$new_m,
                      Reformer_FloatTensor:$new_v);
  let assemblyFormat = [{
    $param `,` $grad `,` $m `,` $v `,` $lr `,` $step
    (`scale` `(` $scale^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Reformer_AdafactorUpdateOp : Reformer_Op<"adafactor_update",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "one Adafactor step of a parameter (the paper's optimizer)";
  let description = [{
    Adafactor (Shazeer & Stern 2018) as trax configures it for the Reformer:
    no momentum, factored second moments, update clipping, relative step.
    With `t = step` (from 1), `ρ = 1 − t^(−decay_rate)`, `g' = scale · grad`
    (`scale` optional, as for `reformer.adam_update`) and
    `G = g'² + epsilon1`:
    - a parameter of rank ≥ 2 `[…, R, C]` keeps factored moments
      `v_row [R]` (`…` flattened into the rows) and `v_col [C]`:
      `v_row' = ρ·v_row + (1 − ρ)·mean_c G`, `v_col' = ρ·v_col +
      (1 − ρ)·mean_r G`, `u = g' / sqrt(v_row'[r] / mean(v_row') ·
      v_col'[c])`;
    - a rank-1 parameter keeps `v_row` of its own shape and no `v_col`:
      `v_row' = ρ·v_row + (1 − ρ)·G`, `u = g' / sqrt(v_row')`;
    then `u /= max(1, rms(u) / clipping_threshold)` and
    `param' = param − lr · max(epsilon2, rms(param)) · u`. Moments are f32.
  }];
  let arguments = (ins Reformer_FloatTensor:$param,
                       Reformer_FloatTensor:$grad,
                       Reformer_F32Tensor0D:$lr,
                       Reformer_F32Tensor0D:$step,
                       Reformer_FloatTensor1D:$v_row,
                       Optional<Reformer_FloatTensor1D>:$v_col,
                       Optional<Reformer_F32Tensor0D>:$scale,
                       DefaultValuedAttr<F64Attr, "0.8">:$decay_rate,
                       DefaultValuedAttr<F64Attr, "1.0e-30">:$epsilon1,
                       DefaultValuedAttr<F64Attr, "1.0e-3">:$epsilon2,
                       DefaultValuedAttr<F64Attr, "1.0">:$clipping_threshold);
  let results = (outs Reformer_FloatTensor:$new_param,
                      Reformer_FloatTensor1D:$new_v_row,
                      Optional<Reformer_FloatTensor1D>:$new_v_col);
  let assemblyFormat = [{
    $param `,` $grad `,` $lr `,` $step `rows` `(` $v_row `)`
    (`cols` `(` $v_col^ `)`)? (`scale` `(` $scale^ `)`)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // REFORMER_DIALECT_REFORMER_IR_REFORMEROPS_TD
