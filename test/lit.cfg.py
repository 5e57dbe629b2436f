# -*- Python -*-
# lit configuration of the reformer test suite.

import os
import sys

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "REFORMER"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.reformer_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%python", sys.executable))
llvm_config.with_system_environment(["HOME", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.reformer_tools_dir, config.llvm_tools_dir]
tools = ["reformer-opt", "reformer-model", "reformer-compile", "reformer-run",
         "reformer-train"]
llvm_config.add_tool_substitutions(tools, tool_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# GPU tests need the CUDA toolkit to build and a GPU to run.
if config.cuda_toolkit_dir:
    config.available_features.add("cuda-toolkit")
    config.substitutions.append(
        ("%ptxas", os.path.join(config.cuda_toolkit_dir, "bin", "ptxas")))


def cuda_gpu_present():
    """Whether the CUDA driver loads and sees a device (GPU tests run)."""
    import ctypes
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    return (cuda.cuInit(0) == 0 and
            cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and
            count.value > 0)


if config.cuda_toolkit_dir and cuda_gpu_present():
    config.available_features.add("cuda-gpu")
config.substitutions.append(
    ("%scripts", os.path.join(os.path.dirname(config.test_source_root),
                              "scripts")))
