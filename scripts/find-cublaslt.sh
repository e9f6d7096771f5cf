# Sourced by the GPU scripts: points OCTET_CUBLASLT at the machine's
# cuBLASLt (the CUDA installation's, else PyTorch's) unless it is set.
if [[ -z "${OCTET_CUBLASLT:-}" ]]; then
  for candidate in /usr/local/cuda/lib64/libcublasLt.so.13 \
      $(python3 -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib", "libcublasLt.so.13"))' 2>/dev/null); do
    if [[ -e "$candidate" ]]; then export OCTET_CUBLASLT="$candidate"; break; fi
  done
fi
