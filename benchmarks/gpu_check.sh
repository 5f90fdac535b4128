#!/usr/bin/env bash
# GPU check: tests/integration/test_gpu.py (the CUDA and bf16-autocast paths the CPU suite cannot reach) on
# this machine's GPU, in one go; exits with pytest's status (124: stopped after 480 s; 3: missing
# dependencies; 4: torch sees no CUDA device).
#
#   bash benchmarks/gpu_check.sh [extra pytest args, e.g. -k darts or --junitxml=FILE]
#   NAS_TEST_DEVICE=cpu bash benchmarks/gpu_check.sh     the same checks rehearsed on the CPU
#
# The interpreter, the first that applies:
#   NAS_PYTHON=/path/to/python   that one, as it is;
#   no .venv/ and a python3 whose torch sees CUDA (a lent GPU machine: torch comes with its
#     image and no package registry is reached, so ./nasw could not install the pinned torch):
#     that python3, with the repository on PYTHONPATH and any wheels carried in .whl/ (omegaconf
#     at least; ray[train] for the two Ray Train checks, which are skipped without it) installed
#     into a temporary folder first;
#   otherwise ./nasw test: .venv/ created or updated with the pinned dependencies, as CI runs.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 3
export PYTHONUNBUFFERED=1

echo "== nvidia-smi -L"
nvidia-smi -L 2>&1 || echo "(nvidia-smi is missing or failed)"

sees_cuda() { "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; }

if [ -n "${NAS_PYTHON:-}" ]; then
  py="$NAS_PYTHON"
  run=("$py" -m pytest)
elif [ ! -x .venv/bin/python ] && command -v python3 >/dev/null && sees_cuda python3; then
  py=python3
  if compgen -G ".whl/*.whl" >/dev/null; then
    site="$(mktemp -d)"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      .whl/*.whl || { echo "gpu_check: installing the wheels in .whl/ failed" >&2; exit 3; }
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"  # the project's packages, uninstalled
  run=(python3 -m pytest)
else
  ./nasw test --version >/dev/null || exit 3  # first run: creates .venv/ (minutes)
  py="$root/.venv/bin/python"
  run=(./nasw test)
fi

echo "== $py"
"$py" - <<'EOF'
import sys

import torch

print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, CUDA available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"device: {torch.cuda.get_device_name()}, bf16: {torch.cuda.is_bf16_supported()}")
EOF

# Fail here, in one line, rather than in a collection error.
if ! "$py" -c 'import omegaconf, pandas, pytest, sklearn, yaml' 2>/dev/null; then
  echo "gpu_check: $py lacks the project's dependencies (omegaconf, pandas, pytest, scikit-learn," \
       "pyyaml); carry them as wheels in .whl/" >&2
  exit 3
fi
if [ "${NAS_TEST_DEVICE:-cuda}" = cuda ] && ! sees_cuda "$py"; then
  # the tests would all be skipped, and an all-skipped run must not pass for a GPU check
  echo "gpu_check: torch in $py sees no CUDA device (NAS_TEST_DEVICE=cpu rehearses on the CPU)" >&2
  exit 4
fi
"$py" -c 'import ray.train' 2>/dev/null || echo "(ray is not installed: the two Ray Train checks will be skipped)"

echo "== pytest"
timeout -k 10 480 "${run[@]}" tests/integration/test_gpu.py -m gpu -v -p no:cacheprovider --durations=0 "$@"
status=$?
[ "$status" -eq 124 ] && echo "gpu_check: pytest ran past 480 s and was stopped" >&2
exit "$status"
