#!/usr/bin/env bash
# npm test's preparation of the native backend: builds tfjs-node into <repo>/.native (gitignored) with
# scripts/native/build-tfjs-node.sh, so that test/unit/nativeBackend.test.ts runs the engine on it
# (SIMSIAM_BACKENDS_DIR=.native). Exits 0 with the reason when this machine cannot build it (those
# tests then skip); non-zero only when a build that should work fails. Seconds when already built.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR="$ROOT/.native"
export TFJS_NODE_VERSION=${TFJS_NODE_VERSION:-4.22.0}
export TENSORFLOW_WHEEL_VERSION=${TENSORFLOW_WHEEL_VERSION:-2.21.0}
export SIMSIAM_NATIVE_CACHE=${SIMSIAM_NATIVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/simsiam-native}
STAMP="$DIR/.built"

cannot() {
  echo "tfjs-node not prepared: $* (the native backend's tests will skip)"
  exit 0
}

# What was built, and for which Node ABI: a stamp that matches means nothing to do.
WANT="tfjs-node $TFJS_NODE_VERSION, tensorflow-cpu $TENSORFLOW_WHEEL_VERSION, N-API $(node -p process.versions.napi), $(uname -sm)"
ADDON=$(ls "$DIR"/node_modules/@tensorflow/tfjs-node/lib/napi-v*/tfjs_binding.node 2>/dev/null | head -n 1 || true)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -n "$ADDON" ]; then
  echo "tfjs-node ready in $DIR ($WANT)"
  exit 0
fi

# The wheel's libraries are linux x86-64 builds.
[ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] || cannot "the tensorflow-cpu wheel used here is for linux-x64, this is $(uname -sm)"
for tool in pip unzip nm strip make python3; do
  command -v "$tool" >/dev/null || cannot "$tool is not installed"
done
command -v c++ >/dev/null || command -v g++ >/dev/null || cannot "no C++ compiler (c++ or g++)"
NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
NODE_VERSION=$(node -p 'process.versions.node')
[ -f "$NODE_PREFIX/include/node/node_api.h" ] || [ -d "${XDG_CACHE_HOME:-$HOME/.cache}/node-gyp/$NODE_VERSION" ] ||
  cannot "no Node headers for node-gyp (neither $NODE_PREFIX/include/node nor node-gyp's cache)"

# Fetching the wheel is the step that needs pip's index or mirror; without one, this machine cannot.
mkdir -p "$SIMSIAM_NATIVE_CACHE"
if ! ls "$SIMSIAM_NATIVE_CACHE"/tensorflow_cpu-"$TENSORFLOW_WHEEL_VERSION"-*.whl >/dev/null 2>&1; then
  echo "pip download tensorflow-cpu==$TENSORFLOW_WHEEL_VERSION (about 270 MB) into $SIMSIAM_NATIVE_CACHE"
  if ! pip download "tensorflow-cpu==$TENSORFLOW_WHEEL_VERSION" --no-deps --only-binary=:all: --quiet --retries 1 \
      -d "$SIMSIAM_NATIVE_CACHE"; then
    cannot "pip could not download tensorflow-cpu==$TENSORFLOW_WHEEL_VERSION (no index or mirror reachable)"
  fi
fi

rm -f "$STAMP"
bash "$ROOT/scripts/native/build-tfjs-node.sh" "$DIR"
echo "$WANT" > "$STAMP"
