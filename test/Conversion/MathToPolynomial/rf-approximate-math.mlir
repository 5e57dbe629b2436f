// RUN: reformer-opt %s --rf-approximate-math | FileCheck %s

// f32 exp, log, tanh and erf (scalar and vector) become polynomials;
// f64 math stays for libm.
// CHECK-LABEL: func.func @math
// CHECK-NOT: math.exp {{.*}} : vector<16xf32>
// CHECK-NOT: math.erf {{.*}} : f32
// CHECK-NOT: math.tanh
// CHECK: math.fma {{.*}} : vector<16xf32>
// CHECK: math.log %{{.*}} : f64
// CHECK: math.cos %{{.*}} : f64
func.func @math(%x: vector<16xf32>, %y: f32, %z: f64) -> (vector<16xf32>, f32, f32, f32, f64, f64) {
  %a = math.exp %x : vector<16xf32>
  %b = math.erf %y : f32
  %c = math.tanh %y : f32
  %d = math.log %y : f32
  %e = math.log %z : f64
  %f = math.cos %z : f64
  return %a, %b, %c, %d, %e, %f : vector<16xf32>, f32, f32, f32, f64, f64
}
