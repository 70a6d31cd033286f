#!/usr/bin/env bash
# Readies Mesa's lavapipe (a software Vulkan driver) so that the WebGPU backend has an adapter to
# be tested on where no GPU exists (test/unit/webgpu.test.ts). Dawn needs Mesa 25.x: bookworm's own
# 22.3 lavapipe lacks a Vulkan feature it requires, so the driver comes from bookworm-backports.
# Exits 0 when lavapipe is ready and when this machine cannot have it (saying why); non-zero only
# when the installation itself fails.
set -euo pipefail

WANTED_MAJOR=25
BACKPORTS_SOURCES=/etc/apt/sources.list.d/bookworm-backports.sources

installed_major() {
  local version
  version=$(dpkg-query -W -f='${Status} ${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  case "$version" in
    'install ok installed '*) version=${version#install ok installed }; echo "${version%%.*}" ;;
    *) echo 0 ;;
  esac
}

ready() {
  [ "$(installed_major)" -ge "$WANTED_MAJOR" ] && dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed'
}

skip() {
  echo "lavapipe: not installed ($1); the WebGPU tests will skip for want of an adapter"
  exit 0
}

if command -v dpkg-query >/dev/null 2>&1 && ready; then
  echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi

[ "$(uname -s)" = Linux ] || skip "not Linux"
command -v apt-get >/dev/null 2>&1 || skip "no apt-get on this machine"
[ "$(id -u)" -eq 0 ] || skip "not root: run 'sudo bash $0' to install it"
codename=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" )
[ "$codename" = bookworm ] || skip "Debian bookworm's backports are needed, this system is '${codename:-unknown}'"
case "$(dpkg --print-architecture)" in
  amd64|arm64) ;;
  *) skip "no lavapipe from bookworm-backports for $(dpkg --print-architecture)" ;;
esac

if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "lavapipe: adding bookworm-backports to apt's sources ($BACKPORTS_SOURCES)"
  cat > "$BACKPORTS_SOURCES" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi

export DEBIAN_FRONTEND=noninteractive
echo "lavapipe: installing mesa-vulkan-drivers ${WANTED_MAJOR}.x and libvulkan1 from bookworm-backports"
apt-get update -qq
apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1

if ! ready; then
  echo "lavapipe: apt installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo '(none)'), not ${WANTED_MAJOR}.x: check bookworm-backports in $BACKPORTS_SOURCES" >&2
  exit 1
fi
echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) installed"
