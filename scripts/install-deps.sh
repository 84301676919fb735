#!/usr/bin/env bash
# Install the Debian 12 packages Open-Tag builds, runs and tests with.
# Idempotent; needs root (or sudo). Skips apt when everything is present.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev ffmpeg
  libopenblas-dev libfaiss-dev zlib1g-dev libyaml-dev libjansson-dev libutf8proc-dev
  libicu-dev
  python3 python3-h5py python3-numpy python3-torch python3-faiss
  jq procps
  slurm-wlm munge
)
# npm fetches the emoji benchmark; the machine image may ship its own Node.js.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
