func.func @f(%qk: tensor<1x2x256x64xbf16>, %v: tensor<1x2x256x64xbf16>) -> tensor<1x2x256x64xbf16> {
  %o = reformer.lsh_attention %qk, %v {n_hashes = 2 : i64, n_buckets = array<i64: 8>, chunk_len = 32 : i64, causal, seed = 1 : i64}
      : (tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>) -> tensor<1x2x256x64xbf16>
  return %o : tensor<1x2x256x64xbf16>
}
