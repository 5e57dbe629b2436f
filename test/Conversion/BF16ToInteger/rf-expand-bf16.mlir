// RUN: reformer-opt %s --rf-expand-bf16 | FileCheck %s

// bf16 → f32 is a shift into the high half; f32 → bf16 rounds to nearest
// even with integer arithmetic (no libgcc call); other floats are untouched.
// CHECK-LABEL: func.func @conversions
// CHECK-NOT: arith.extf {{.*}} : bf16
// CHECK: arith.bitcast {{.*}} : bf16 to i16
// CHECK: arith.extui
// CHECK: arith.shli
// CHECK: arith.bitcast {{.*}} : i32 to f32
// CHECK-NOT: arith.truncf {{.*}} to bf16
// CHECK: arith.bitcast {{.*}} : vector<16xf32> to vector<16xi32>
// CHECK: arith.shrui
// CHECK: arith.trunci {{.*}} : vector<16xi32> to vector<16xi16>
// CHECK: arith.bitcast {{.*}} : vector<16xi16> to vector<16xbf16>
// CHECK: arith.truncf {{.*}} : f32 to f16
func.func @conversions(%a: bf16, %b: vector<16xf32>, %c: f32) -> (f32, vector<16xbf16>, f16) {
  %x = arith.extf %a : bf16 to f32
  %y = arith.truncf %b : vector<16xf32> to vector<16xbf16>
  %z = arith.truncf %c : f32 to f16
  return %x, %y, %z : f32, vector<16xbf16>, f16
}
