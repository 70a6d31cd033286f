#!/usr/bin/env bash
# npm test's preparation of TensorFlow, Keras and TensorBoard for the Python hand-off checks
# (test/unit/pythonHandoff.test.ts runs scripts/python/check_keras.py, and
# test/unit/projectorExport.test.ts scripts/python/check_projector.py). The product never needs
# Python; this only lets those checks run. Where $SIMSIAM_PYTHON or python3 already imports all
# three, nothing is installed; otherwise tensorflow-cpu, keras and tensorboard go into their own
# virtual environment, $SIMSIAM_PYTHON_ENV (default ~/.cache/simsiam-lab/python-tensorflow), so
# the numpy they pin never changes the system Python's. About 1.6 GB on disk (a 274 MB wheel);
# from pip's local mirror it installs in 1-3 minutes on 2 cores. Exits 0 with the reason when
# this machine cannot have it (the checks then skip).
set -uo pipefail
ENV_DIR="${SIMSIAM_PYTHON_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/simsiam-lab/python-tensorflow}"
NEEDED_MB=3000
skip() { echo "TensorFlow not prepared: $1 (the Python hand-off check will skip)"; exit 0; }
has_tensorflow() { "$1" -c 'import tensorflow, keras, tensorboard, numpy' >/dev/null 2>&1; }
versions() { "$1" -c 'import tensorflow, keras; print(f"tensorflow {tensorflow.__version__}, keras {keras.__version__}")' 2>/dev/null; }

for python in "${SIMSIAM_PYTHON:-}" "$ENV_DIR/bin/python" python3; do
  if [ -n "$python" ] && command -v "$python" >/dev/null && has_tensorflow "$python"; then
    echo "TensorFlow ready for $python: $(versions "$python")"
    exit 0
  fi
done

command -v python3 >/dev/null || skip "python3 is not installed"
mkdir -p "$(dirname "$ENV_DIR")" || skip "cannot create $(dirname "$ENV_DIR")"
free_mb=$(df -Pm "$(dirname "$ENV_DIR")" | awk 'NR == 2 { print $4 }')
[ "${free_mb:-0}" -ge "$NEEDED_MB" ] || skip "$(dirname "$ENV_DIR") has ${free_mb:-?} MB free; TensorFlow needs about $NEEDED_MB MB"
if [ ! -x "$ENV_DIR/bin/python" ]; then
  python3 -m venv "$ENV_DIR" >/dev/null 2>&1 || { rm -rf "$ENV_DIR"; skip "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"; }
fi
started=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# pip's log goes to a file: behind a mirror it warns once per package about the unreachable index.
if "$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --retries 1 --timeout 60 tensorflow-cpu keras tensorboard >"$log" 2>&1; then
  has_tensorflow "$ENV_DIR/bin/python" || skip "pip installed tensorflow-cpu into $ENV_DIR, but it does not import"
  echo "TensorFlow installed into $ENV_DIR in $((SECONDS - started)) s: $(versions "$ENV_DIR/bin/python")"
else
  grep -v -e '^WARNING: Retrying' -e '^WARNING: Location' "$log" | tail -n 5
  skip "pip could not install tensorflow-cpu, keras and tensorboard into $ENV_DIR (no index or mirror reachable?)"
fi
exit 0
