//===- ReformerAttrs.td - Attributes of the reformer dialect -*- tablegen -*-===//

#ifndef REFORMER_DIALECT_REFORMER_IR_REFORMERATTRS_TD
#define REFORMER_DIALECT_REFORMER_IR_REFORMERATTRS_TD

include "reformer/Dialect/Reformer/IR/ReformerDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Reformer_ActivationRelu : I32EnumAttrCase<"relu", 0>;
def Reformer_ActivationGelu : I32EnumAttrCase<"gelu", 1>;
def Reformer_ActivationGeluTanh : I32EnumAttrCase<"gelu_tanh", 2>;
def Reformer_ActivationSilu : I32EnumAttrCase<"silu", 3>;

def Reformer_Activation : I32EnumAttr<"Activation",
    "position-wise activation of a feed-forward layer",
    [Reformer_ActivationRelu, Reformer_ActivationGelu,
     Reformer_ActivationGeluTanh, Reformer_ActivationSilu]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::reformer";
}

// relu(x) = max(x, 0); gelu(x) = x·Φ(x) (exact, erf); gelu_tanh is the tanh
// approximation of GELU; silu(x) = x·sigmoid(x).
def Reformer_ActivationAttr : EnumAttr<Reformer_Dialect, Reformer_Activation,
                                       "activation"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // REFORMER_DIALECT_REFORMER_IR_REFORMERATTRS_TD
