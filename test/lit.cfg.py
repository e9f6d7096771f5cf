# -*- Python -*-
# lit configuration of the Octet suite.

import os
import shutil
import subprocess
import sys

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "Octet"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py",
                   "Inputs", "unit", "utils"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.octet_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%octet_src_root", config.octet_src_root))
config.substitutions.append(("%octet_obj_root", config.octet_obj_root))
# Longer names first: lit substitutes in order.
config.substitutions.append(("%cmake_generator", config.cmake_generator))
config.substitutions.append(("%cmake", config.cmake_command))
config.substitutions.append(("%cxx", config.cxx_compiler))
config.substitutions.append(("%mlir_dir", config.mlir_dir))
config.substitutions.append(("%expect-exit", "%s %s" % (
    sys.executable,
    os.path.join(config.octet_src_root, "test", "utils", "expect-exit.py"))))

# OCTET_CUBLASLT names the cuBLASLt that --device cuda and the benchmarks
# load (scripts/find-cublaslt.sh).
llvm_config.with_system_environment(["HOME", "TMPDIR", "TMP", "TEMP",
                                     "OCTET_CUBLASLT", "LD_LIBRARY_PATH"])
llvm_config.use_default_substitutions()

tool_dirs = [config.octet_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions([ToolSubst("octet-opt", unresolved="fatal"),
                                    ToolSubst("octetc", unresolved="fatal"),
                                    ToolSubst("octet-run", unresolved="fatal"),
                                    ToolSubst("octet-bench", unresolved="fatal")], tool_dirs)
llvm_config.with_environment("PATH", config.octet_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# Features. `cuda-toolkit`: the build found CUDA 13 (nvcc, ptxas).
# `cuda-sm90`: a Hopper GPU (compute capability 9.0) is visible; GPU-only
# tests say `REQUIRES: cuda-sm90` and are reported unsupported elsewhere.
if config.octet_have_cuda:
    config.available_features.add("cuda-toolkit")
    # The toolkit's assembler, to read its report on the generated PTX.
    config.substitutions.append(
        ("%ptxas", os.path.join(config.octet_cuda_bin_dir, "ptxas")))
if config.octet_have_nccl:
    config.available_features.add("nccl")


def detect_sm90():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(l.strip() == "9.0" for l in out.stdout.splitlines())


if config.octet_have_cuda and detect_sm90():
    config.available_features.add("cuda-sm90")
