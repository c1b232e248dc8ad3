#!/usr/bin/env bash
# Installs voyager_pipe and what it needs on a fresh Debian/Ubuntu machine (idempotent).
# - system library for Open3D (libusb-1.0-0) and ffmpeg, when apt is available;
# - torch==2.13.0 first (the CPU build), so the open `torch>=2.4` requirement pulls nothing else;
# - the package itself, editable, with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p 2>/dev/null | grep -q libusb-1.0; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "setup: please install the system library libusb-1.0-0 (needed by Open3D)" >&2
  fi
fi
PIP="python3 -m pip"
$PIP install -q "${VOYAGER_TORCH_SPEC:-torch==2.13.0}"
$PIP install -q -e ".[test]"
