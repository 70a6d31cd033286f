#!/usr/bin/env bash
# Builds @tensorflow/tfjs-node into a backends folder (<dir>/node_modules/@tensorflow/tfjs-node) without
# the internet: its own installer downloads libtensorflow 2.9.1 and a prebuilt addon from Google's
# storage, which machines without general internet (CI included) cannot reach. Instead this compiles
# the package's N-API addon against the TensorFlow C API that ships inside pip's tensorflow-cpu wheel.
#
# Usage: scripts/native/build-tfjs-node.sh <backends_dir>
# Needs: npm (registry), pip (an index or mirror with the wheel), unzip, nm/strip, a C++ compiler,
# make, python3 and Node's headers (node-gyp reads them from <node prefix>/include/node when offline).
# Env:   TFJS_NODE_VERSION (4.22.0)  TENSORFLOW_WHEEL_VERSION (2.21.0)
#        SIMSIAM_NATIVE_CACHE (~/.cache/simsiam-native: the wheel and its extracted libraries)
# The wheel's C API is split over two libraries: TFE_* / TF_Session* / TF_Version live in
# libtensorflow_cc.so.2, TF_Tensor* / TF_Status* / TF_Buffer* in libtensorflow_framework.so.2.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 <backends_dir>   (tfjs-node is built into <backends_dir>/node_modules)" >&2
  exit 2
fi
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
TFJS_NODE_VERSION=${TFJS_NODE_VERSION:-4.22.0}
TF_WHEEL=${TENSORFLOW_WHEEL_VERSION:-2.21.0}
CACHE=${SIMSIAM_NATIVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/simsiam-native}
PKG="$DIR/node_modules/@tensorflow/tfjs-node"

step() { echo "[build-tfjs-node] $*"; }

# 1. The package's JavaScript and sources, without its install script (the download above).
if [ ! -f "$PKG/binding.gyp" ] || [ "$(node -p "require('$PKG/package.json').version")" != "$TFJS_NODE_VERSION" ]; then
  step "npm install @tensorflow/tfjs-node@$TFJS_NODE_VERSION into $DIR"
  npm install --prefix "$DIR" --ignore-scripts --no-audit --no-fund --loglevel=error \
    "@tensorflow/tfjs-node@$TFJS_NODE_VERSION"
fi

# 2. The wheel is a zip: only the C API's headers and its two shared libraries are taken from it.
mkdir -p "$CACHE"
find_wheel() { ls "$CACHE"/tensorflow_cpu-"$TF_WHEEL"-*.whl 2>/dev/null | head -n 1 || true; }
WHEEL=$(find_wheel)
if [ -z "$WHEEL" ]; then
  step "pip download tensorflow-cpu==$TF_WHEEL into $CACHE"
  pip download "tensorflow-cpu==$TF_WHEEL" --no-deps --only-binary=:all: --quiet --retries 1 -d "$CACHE"
  WHEEL=$(find_wheel)
fi
LIBS="$CACHE/extracted-$TF_WHEEL"
if [ ! -f "$LIBS/.complete" ]; then
  step "extracting the C API from $(basename "$WHEEL")"
  rm -rf "$LIBS"
  unzip -q -o "$WHEEL" -d "$LIBS" \
    'tensorflow/libtensorflow_cc.so.2' 'tensorflow/libtensorflow_framework.so.2' \
    'tensorflow/include/tensorflow/c/*' 'tensorflow/include/tensorflow/core/platform/*' \
    'tensorflow/include/tsl/*' 'tensorflow/include/xla/tsl/*'
  touch "$LIBS/.complete"
fi
T="$LIBS/tensorflow"

# Fail here, with a reason, rather than at link or load time, if a future wheel moves the symbols.
# (grep -c, not grep -q: under pipefail grep -q's early exit would kill nm with SIGPIPE.)
exports() { nm -D --defined-only "$1" | grep -c -E " ($2)(@|\$)" || true; }
if [ "$(exports "$T/libtensorflow_cc.so.2" 'TFE_NewContext|TFE_Execute|TF_Version')" != 3 ] ||
   [ "$(exports "$T/libtensorflow_framework.so.2" 'TF_NewTensor|TF_NewStatus')" != 2 ]; then
  echo "tensorflow-cpu $TF_WHEEL's libraries do not export the TensorFlow C API tfjs-node needs:" \
    "set TENSORFLOW_WHEEL_VERSION to a wheel that does (2.21.0 does)" >&2
  exit 1
fi

# 3. deps/ laid out as binding.gyp expects (-ltensorflow -ltensorflow_framework, rpath
#    $ORIGIN/../../deps/lib). The addon records the libraries' SONAMEs (*.so.2), which is what must
#    exist at run time; the unversioned names are for the linker only. Stripping halves the size.
step "laying out deps/ and compiling the addon"
rm -rf "$PKG/deps" "$PKG/lib" "$PKG/build"
mkdir -p "$PKG/deps/lib" "$PKG/deps/include"
cp -r "$T/include/." "$PKG/deps/include/"
for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
  strip --strip-unneeded -o "$PKG/deps/lib/$lib" "$T/$lib"
done
ln -s libtensorflow_cc.so.2 "$PKG/deps/lib/libtensorflow.so"
ln -s libtensorflow_framework.so.2 "$PKG/deps/lib/libtensorflow_framework.so"

# 4. node-gyp: npm's bundled copy when there is one. Offline it cannot download Node's headers, so it
#    gets the local ones (Debian's nodejs and the official tarballs put them in <prefix>/include/node).
GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
if [ -f "$GYP" ]; then GYP=(node "$GYP"); else GYP=(npx --yes node-gyp@10); fi
NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
NODEDIR=()
if [ -f "$NODE_PREFIX/include/node/node_api.h" ]; then NODEDIR=(--nodedir="$NODE_PREFIX"); fi
# The N-API version node-pre-gyp would pick at load time: the highest the package lists that this Node has.
NAPI=$(node -p "Math.max(...require('$PKG/package.json').binary.napi_versions.filter((v) => v <= +process.versions.napi))")
(cd "$PKG" && "${GYP[@]}" rebuild --loglevel=warn "${NODEDIR[@]}" --napi_build_version="$NAPI" \
  --module_name=tfjs_binding --module_path="$PKG/lib/napi-v$NAPI" >/dev/null)
rm -rf "$PKG/build"

# 5. It loads, registers the 'tensorflow' backend and computes.
step "checking the build"
(cd "$DIR" && node -e "
const tf = require('@tensorflow/tfjs-node');
const product = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0];
if (tf.getBackend() !== 'tensorflow' || product !== 11) {
  console.error('tfjs-node built but does not compute: backend', tf.getBackend(), 'product', product);
  process.exit(1);
}
console.log('[build-tfjs-node] tfjs-node ' + require('@tensorflow/tfjs-node/package.json').version +
  ' on TensorFlow ' + tf.backend().binding.TF_Version + ' (tensorflow-cpu wheel $TF_WHEEL) in $DIR');
")
