// Dense layers for the tensor-core kernel: one of tile-aligned sizes and
// one whose sizes are not multiples of its 64 x 64 tile or 32-wide k step
// (its edge guards run), with a bias the kernel adds as it stores.
func.func @aligned(%x: tensor<1x128x64xf32>, %w: tensor<64x128xf32>)
    -> tensor<1x128x128xf32> {
  %y = reformer.dense %x, %w
      : (tensor<1x128x64xf32>, tensor<64x128xf32>) -> tensor<1x128x128xf32>
  return %y : tensor<1x128x128xf32>
}

func.func @ragged(%x: tensor<1x100x40xf32>, %w: tensor<40x72xf32>,
                  %b: tensor<72xf32>) -> tensor<1x100x72xf32> {
  %y = reformer.dense %x, %w, %b
      : (tensor<1x100x40xf32>, tensor<40x72xf32>, tensor<72xf32>)
      -> tensor<1x100x72xf32>
  return %y : tensor<1x100x72xf32>
}
