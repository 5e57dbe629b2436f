// RUN: reformer-opt %s --rf-derive-training-step --split-input-file --verify-diagnostics | FileCheck %s
// RUN: reformer-opt %s --rf-derive-training-step="clip-norm=0.5" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=CLIP

// RUN: reformer-opt %s --rf-derive-training-step="optimizer=adafactor" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=AFACT
// RUN: not reformer-opt %s --rf-derive-training-step="optimizer=sgd" --split-input-file 2>&1 | FileCheck %s --check-prefix=BADOPT
// BADOPT: rf-derive-training-step: unknown optimizer 'sgd' (adam or adafactor)

// Adafactor keeps factored moments: rows and columns for matrices, one
// vector for vectors.
// AFACT-LABEL: func.func @train_step
// AFACT-SAME: {reformer.param = "adafactor.vr.emb"}
// AFACT-SAME: %[[B2R:[a-z0-9]+]]: tensor<16xf32> {reformer.param = "adafactor.vr.b2"}
// AFACT-SAME: %[[HEADR:[a-z0-9]+]]: tensor<16xf32> {reformer.param = "adafactor.vr.head"}
// AFACT-SAME: %[[HEADC:[a-z0-9]+]]: tensor<16xf32> {reformer.param = "adafactor.vc.head"}
// AFACT-SAME: {reformer.output = "adafactor.vc.head"})
// AFACT: reformer.dense_grad
// AFACT-NEXT: reformer.adafactor_update {{.*}} rows(%[[HEADR]]) cols(%[[HEADC]]) : (tensor<16x16xf32>
// AFACT: reformer.adafactor_update {{.*}} rows(%[[B2R]]) : (tensor<16xf32>
// AFACT-NOT: reformer.adam_update

// With clip-norm, every update waits for the clip factor of all gradients.
// CLIP-LABEL: func.func @train_step
// CLIP: reformer.embedding_grad
// CLIP-NEXT: %[[S:.+]] = reformer.clip_scale %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {max_norm = 5.000000e-01 : f64}
// CLIP-COUNT-7: reformer.adam_update {{.*}} scale(%[[S]])

// One reversible block (F: LSH attention, G: chunked FFN) between an
// embedding and an LM head.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: %[[TOK:[a-z0-9]+]]: tensor<1x32xi32> {reformer.input = "tokens"}
// CHECK-SAME: %[[TGT:[a-z0-9]+]]: tensor<1x32xi32> {reformer.input = "targets"}
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<1x32xf32> {reformer.input = "loss_weights"}
// CHECK-SAME: %[[LR:[a-z0-9]+]]: tensor<f32> {reformer.input = "lr"}
// CHECK-SAME: %[[STEP:[a-z0-9]+]]: tensor<f32> {reformer.input = "step"}
// CHECK-SAME: %[[EMB:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "emb"}
// CHECK-SAME: %[[QK:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "qk"}
// CHECK-SAME: %[[HEAD:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "head"}
// CHECK-SAME: {reformer.param = "adam.m.emb"}
// CHECK-SAME: {reformer.param = "adam.v.head"}
// CHECK-SAME: -> (tensor<f32> {reformer.output = "loss"}, tensor<16x16xf32> {reformer.output = "emb"}
// CHECK-SAME: {reformer.output = "adam.v.head"})
//
// Forward: the block inlined; LSH attention also returns its statistics.
// CHECK: %[[X:.+]] = reformer.embedding %[[TOK]], %[[EMB]]
// CHECK: %[[OUT:.+]], %[[STATS:.+]]:2 = reformer.lsh_attention {{.*}} -> (tensor<1x2x32x8xf32>, tensor<1x2x2x32xf32>, tensor<1x2x2x32xi32>)
// CHECK: %[[Y1:.+]] = arith.addf %[[X]], %{{.*}} : tensor<1x32x16xf32>
// CHECK: %[[G:.+]] = reformer.chunked_ffn %[[Y1]]
// CHECK: %[[Y2:.+]] = arith.addf %[[X]], %[[G]]
// CHECK: %[[LOGITS:.+]] = reformer.dense
// CHECK: %[[LOSS:.+]] = reformer.softmax_cross_entropy %[[LOGITS]], %[[TGT]] weights(%[[W]])
// CHECK: reformer.softmax_cross_entropy_grad %[[LOGITS]], %[[TGT]] weights(%[[W]])
// CHECK: %{{.*}}, %[[HEADGRAD:.+]], %{{.*}} = reformer.dense_grad
// Each parameter is updated as soon as its gradient is complete (the
// gradient is then freed, not held to the end of the step).
// CHECK-NEXT: reformer.adam_update %[[HEAD]], %[[HEADGRAD]], %{{.*}}, %{{.*}}, %[[LR]], %[[STEP]] {beta2 = 0.97999999999999998 : f64, epsilon = 1.000000e-09 : f64}
//
// Backward through the block: G(y1) recomputed, x2 = y2 − G(y1), G's
// gradient, then F(x2) recomputed from the stored buckets (sorted again,
// never re-hashed), x1 = y1 − F(x2), F's gradient.
// CHECK: %[[GR:.+]] = reformer.chunked_ffn %[[Y1]]
// CHECK: %[[X2:.+]] = arith.subf %[[Y2]], %[[GR]]
// CHECK: reformer.chunked_ffn_grad
// CHECK-NOT: reformer.lsh_hash
// CHECK: reformer.bucket_sort %[[STATS]]#1
// CHECK: reformer.sorted_chunk_attention
// CHECK: reformer.unsort
// CHECK: %[[LSE:.+]] = reformer.unsort
// CHECK: %[[FOUT:.+]] = reformer.combine_rounds
// CHECK: arith.subf %[[Y1]]
// CHECK: reformer.lsh_attention_grad %{{.*}}, %{{.*}}, %[[FOUT]], %{{.*}} lse(%[[LSE]]) buckets(%[[STATS]]#1) {causal, chunk_len = 8 : i64, n_buckets = array<i64: 4>}
// CHECK: %[[EMBGRAD:.+]] = reformer.embedding_grad %[[TOK]]
// CHECK-NEXT: reformer.adam_update %[[EMB]], %[[EMBGRAD]]
// CHECK: return %[[LOSS]]
func.func @forward(%tok: tensor<1x32xi32> {reformer.input = "tokens"},
                   %emb: tensor<16x16xf32> {reformer.param = "emb"},
                   %wqk: tensor<16x16xf32> {reformer.param = "qk"},
                   %w1: tensor<16x32xf32> {reformer.param = "w1"},
                   %b1: tensor<32xf32> {reformer.param = "b1"},
                   %w2: tensor<32x16xf32> {reformer.param = "w2"},
                   %b2: tensor<16xf32> {reformer.param = "b2"},
                   %head: tensor<16x16xf32> {reformer.param = "head"}) -> tensor<1x32x16xf32> {
  %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  %y1, %y2 = reformer.reversible %x, %x : tensor<1x32x16xf32> f {
  ^bb0(%in: tensor<1x32x16xf32>):
    %p = reformer.dense %in, %wqk : (tensor<1x32x16xf32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
    %h = reformer.split_heads %p : (tensor<1x32x16xf32>) -> tensor<1x2x32x8xf32>
    %a = reformer.lsh_attention %h, %h {causal, chunk_len = 8 : i64, n_buckets = array<i64: 4>, n_hashes = 2 : i64, seed = 3 : i64} : (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>) -> tensor<1x2x32x8xf32>
    %m = reformer.merge_heads %a : (tensor<1x2x32x8xf32>) -> tensor<1x32x16xf32>
    reformer.yield %m : tensor<1x32x16xf32>
  } g {
  ^bb0(%in: tensor<1x32x16xf32>):
    %f = reformer.chunked_ffn %in, %w1, %b1, %w2, %b2 {activation = #reformer.activation<relu>, chunk = 8 : i64} : (tensor<1x32x16xf32>, tensor<16x32xf32>, tensor<32xf32>, tensor<32x16xf32>, tensor<16xf32>) -> tensor<1x32x16xf32>
    reformer.yield %f : tensor<1x32x16xf32>
  }
  %logits = reformer.dense %y2, %head : (tensor<1x32x16xf32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  return %logits : tensor<1x32x16xf32>
}

// -----

// Dropout: the step takes a seed; the forward, the recomputation of F (for
// x1 = y1 − F(x2)) and the gradient all use that seed and the site's salt,
// so they see one mask.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: %[[SEED:[a-z0-9]+]]: tensor<i64> {reformer.input = "dropout_seed"}
// CHECK: %[[F:.+]] = reformer.dropout %{{.*}} seed(%[[SEED]]) {rate = 2.000000e-01 : f64, salt = 4 : i64}
// CHECK: %[[Y1:.+]] = arith.addf %{{.*}}, %[[F]]
// CHECK: reformer.dropout {{.*}} seed(%[[SEED]]) {rate = 2.000000e-01 : f64, salt = 4 : i64}
// CHECK: arith.subf %[[Y1]]
// CHECK: reformer.dropout {{.*}} seed(%[[SEED]]) {rate = 2.000000e-01 : f64, salt = 4 : i64}
// CHECK: reformer.dense_grad
func.func @forward(%tok: tensor<1x32xi32> {reformer.input = "tokens"},
                   %emb: tensor<16x16xf32> {reformer.param = "emb"},
                   %w: tensor<16x16xf32> {reformer.param = "w"}) -> tensor<1x32x16xf32> {
  %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  %y1, %y2 = reformer.reversible %x, %x : tensor<1x32x16xf32> f {
  ^bb0(%in: tensor<1x32x16xf32>):
    %p = reformer.dense %in, %w : (tensor<1x32x16xf32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
    %d = reformer.dropout %p {rate = 0.2 : f64, salt = 4 : i64} : (tensor<1x32x16xf32>) -> tensor<1x32x16xf32>
    reformer.yield %d : tensor<1x32x16xf32>
  } g {
  ^bb0(%in: tensor<1x32x16xf32>):
    reformer.yield %in : tensor<1x32x16xf32>
  }
  return %y2 : tensor<1x32x16xf32>
}

// -----

// expected-error @+1 {{rf-derive-training-step: no function @forward with a body to differentiate}}
module {
  func.func @other() {
    return
  }
}

// -----

// expected-error @+1 {{'func.func' op cannot be differentiated: rf-derive-training-step supports f32 parameters only, got 'tensor<16x16xbf16>'}}
func.func @forward(%tok: tensor<1x32xi32>, %emb: tensor<16x16xbf16>) -> tensor<1x32x16xf32> {
  %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xbf16>) -> tensor<1x32x16xbf16>
  %y = arith.extf %x : tensor<1x32x16xbf16> to tensor<1x32x16xf32>
  return %y : tensor<1x32x16xf32>
}

// -----

// expected-error @+1 {{'func.func' op cannot be differentiated: expects (tokens [B, L], params…) -> logits [B, L, V] in one block}}
func.func @forward(%emb: tensor<16x16xf32>) -> tensor<16x16xf32> {
  return %emb : tensor<16x16xf32>
}

// -----

func.func @forward(%tok: tensor<1x32xi32>, %emb: tensor<16x16xf32>) -> tensor<1x32x16xf32> {
  %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  // expected-error @+1 {{'arith.mulf' op has no gradient rule: rf-derive-training-step cannot differentiate through it}}
  %y = arith.mulf %x, %x : tensor<1x32x16xf32>
  return %y : tensor<1x32x16xf32>
}

// -----

// expected-error @+1 {{rf-derive-training-step: @train_step exists already}}
module {
  func.func @forward(%tok: tensor<1x32xi32>, %emb: tensor<16x16xf32>) -> tensor<1x32x16xf32> {
    %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
    return %x : tensor<1x32x16xf32>
  }
  func.func @train_step() {
    return
  }
}

// -----

// expected-error @+1 {{'func.func' op cannot be trained: no parameter receives a gradient}}
func.func @forward(%tok: tensor<1x32xi32>, %rot: tensor<2x8x2x2xf32>) -> tensor<1x32x16xf32> {
  %c = arith.constant dense<1.0> : tensor<1x32x16xf32>
  return %c : tensor<1x32x16xf32>
}

// -----

// Mixed precision: the gradients of a weight's bf16 copy (truncf) and of a
// widened activation (extf) pass through unchanged, in f32.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: {reformer.param = "w32"}
// CHECK: %[[W16:.+]] = arith.truncf %{{.*}} : tensor<16x16xf32> to tensor<16x16xbf16>
// CHECK: %[[DX:[a-z_0-9]+]], %[[DW:[a-z_0-9]+]], %{{.*}} = reformer.dense_grad %{{.*}}, %[[W16]], %{{.*}} : (tensor<1x32x16xbf16>, tensor<16x16xbf16>, tensor<1x32x16xf32>) -> (tensor<1x32x16xf32>, tensor<16x16xf32>, tensor<16xf32>)
// CHECK-NEXT: reformer.adam_update %{{.*}}, %[[DW]], {{.*}} : (tensor<16x16xf32>, tensor<16x16xf32>
// CHECK: reformer.embedding_grad %{{.*}}, %[[DX]] : (tensor<1x32xi32>, tensor<1x32x16xf32>) -> tensor<16x16xf32>
func.func @forward(%tok: tensor<1x32xi32> {reformer.input = "tokens"},
                   %emb: tensor<16x16xf32> {reformer.param = "emb32"},
                   %w: tensor<16x16xf32> {reformer.param = "w32"})
    -> tensor<1x32x16xf32> {
  %w16 = arith.truncf %w : tensor<16x16xf32> to tensor<16x16xbf16>
  %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  %x16 = arith.truncf %x : tensor<1x32x16xf32> to tensor<1x32x16xbf16>
  %y = reformer.dense %x16, %w16 : (tensor<1x32x16xbf16>, tensor<16x16xbf16>) -> tensor<1x32x16xbf16>
  %y32 = arith.extf %y : tensor<1x32x16xbf16> to tensor<1x32x16xf32>
  return %y32 : tensor<1x32x16xf32>
}

// -----

// Layer functions: each gets one step forward (which also returns the
// buckets) and one step backward (inputs rebuilt from outputs, gradients,
// and the updates of the parameters that only its layer reads), whatever
// the number of layers that call it. The step calls the forwards in order,
// then the backwards in reverse; the backward does not take the rotations.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: %[[LR:[a-z0-9]+]]: tensor<f32> {reformer.input = "lr"}
// CHECK-SAME: %[[STEP:[a-z0-9]+]]: tensor<f32> {reformer.input = "step"}
// CHECK-SAME: %[[W0:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "w0"}
// CHECK-SAME: %[[W1:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "w1"}
// CHECK-SAME: %[[M0:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "adam.m.w0"}
// CHECK-SAME: %[[M1:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "adam.m.w1"}
// CHECK-SAME: %[[V0:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "adam.v.w0"}
// CHECK-SAME: %[[V1:[a-z0-9]+]]: tensor<16x16xf32> {reformer.param = "adam.v.w1"}
// CHECK: %[[X:.+]] = reformer.embedding
// CHECK: %[[R0:.+]] = reformer.lsh_rotations {seed = 3 : i64}
// CHECK: %[[A:.+]]:3 = call @train_step_layer_forward(%[[X]], %[[X]], %[[W0]], %[[R0]])
// CHECK: %[[R1:.+]] = reformer.lsh_rotations {seed = 4 : i64}
// CHECK: %[[B:.+]]:3 = call @train_step_layer_forward(%[[A]]#0, %[[A]]#1, %[[W1]], %[[R1]])
// CHECK: reformer.dense_grad
// CHECK: %[[DB:.+]]:7 = call @train_step_layer_backward(%[[B]]#0, %[[B]]#1, %{{.*}}, %{{.*}}, %[[B]]#2, %[[W1]], %[[M1]], %[[V1]], %[[LR]], %[[STEP]])
// CHECK: %[[DA:.+]]:7 = call @train_step_layer_backward(%[[DB]]#0, %[[DB]]#1, %[[DB]]#2, %[[DB]]#3, %[[A]]#2, %[[W0]], %[[M0]], %[[V0]], %[[LR]], %[[STEP]])
// CHECK: arith.addf %[[DA]]#2, %[[DA]]#3
// CHECK: reformer.embedding_grad
// CHECK: return %{{[^,]+}}, %{{[^,]+}}, %[[DA]]#4, %[[DB]]#4, %{{[^,]+}}, %{{[^,]+}}, %[[DA]]#5, %[[DB]]#5, %{{[^,]+}}, %{{[^,]+}}, %[[DA]]#6, %[[DB]]#6
// CHECK-LABEL: func.func private @train_step_layer_forward(
// CHECK: reformer.lsh_attention {{.*}} -> (tensor<1x2x32x8xf32>, tensor<1x2x2x32xf32>, tensor<1x2x2x32xi32>)
// CHECK-LABEL: func.func private @train_step_layer_backward(
// CHECK-NOT: reformer.lsh_hash
// CHECK: reformer.bucket_sort
// CHECK: reformer.lsh_attention_grad
// CHECK: reformer.dense_grad
// CHECK: reformer.adam_update
// CHECK: return
// CHECK-NOT: func.func private @train_step_layer
func.func private @layer(%x1: tensor<1x32x16xf32>, %x2: tensor<1x32x16xf32>,
                         %w: tensor<16x16xf32>, %rot: tensor<2x8x2x2xf32>)
    -> (tensor<1x32x16xf32>, tensor<1x32x16xf32>) {
  %y1, %y2 = reformer.reversible %x1, %x2 : tensor<1x32x16xf32> f {
  ^bb0(%in: tensor<1x32x16xf32>):
    %p = reformer.dense %in, %w : (tensor<1x32x16xf32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
    %h = reformer.split_heads %p : (tensor<1x32x16xf32>) -> tensor<1x2x32x8xf32>
    %a = reformer.lsh_attention %h, %h rotations(%rot) {causal, chunk_len = 8 : i64, n_buckets = array<i64: 4>, n_hashes = 2 : i64} : (tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<2x8x2x2xf32>) -> tensor<1x2x32x8xf32>
    %m = reformer.merge_heads %a : (tensor<1x2x32x8xf32>) -> tensor<1x32x16xf32>
    reformer.yield %m : tensor<1x32x16xf32>
  } g {
  ^bb0(%in: tensor<1x32x16xf32>):
    %d = reformer.dense %in, %w : (tensor<1x32x16xf32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
    reformer.yield %d : tensor<1x32x16xf32>
  }
  return %y1, %y2 : tensor<1x32x16xf32>, tensor<1x32x16xf32>
}
func.func @forward(%tok: tensor<1x32xi32> {reformer.input = "tokens"},
                   %emb: tensor<16x16xf32> {reformer.param = "emb"},
                   %w0: tensor<16x16xf32> {reformer.param = "w0"},
                   %w1: tensor<16x16xf32> {reformer.param = "w1"},
                   %head: tensor<16x16xf32> {reformer.param = "head"}) -> tensor<1x32x16xf32> {
  %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  %r0 = reformer.lsh_rotations {seed = 3 : i64} : tensor<2x8x2x2xf32>
  %a:2 = call @layer(%x, %x, %w0, %r0) : (tensor<1x32x16xf32>, tensor<1x32x16xf32>, tensor<16x16xf32>, tensor<2x8x2x2xf32>) -> (tensor<1x32x16xf32>, tensor<1x32x16xf32>)
  %r1 = reformer.lsh_rotations {seed = 4 : i64} : tensor<2x8x2x2xf32>
  %b:2 = call @layer(%a#0, %a#1, %w1, %r1) : (tensor<1x32x16xf32>, tensor<1x32x16xf32>, tensor<16x16xf32>, tensor<2x8x2x2xf32>) -> (tensor<1x32x16xf32>, tensor<1x32x16xf32>)
  %logits = reformer.dense %b#1, %head : (tensor<1x32x16xf32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  return %logits : tensor<1x32x16xf32>
}

// -----

func.func private @helper(%x: tensor<1x32x16xf32>) -> tensor<1x32x16xf32> {
  return %x : tensor<1x32x16xf32>
}
func.func @forward(%tok: tensor<1x32xi32>, %emb: tensor<16x16xf32>) -> tensor<1x32x16xf32> {
  %x = reformer.embedding %tok, %emb : (tensor<1x32xi32>, tensor<16x16xf32>) -> tensor<1x32x16xf32>
  // expected-error @+1 {{'func.call' op cannot be differentiated: rf-derive-training-step follows calls of layer functions only, (x1, x2, operands…) -> (y1, y2) holding one reformer.reversible of (x1, x2)}}
  %y = call @helper(%x) : (tensor<1x32x16xf32>) -> tensor<1x32x16xf32>
  return %y : tensor<1x32x16xf32>
}
