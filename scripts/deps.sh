#!/usr/bin/env bash
# Installs what vllmc needs on Debian 12 (build) and, with --test, what the tests need.
set -euo pipefail
# glslc compiles the Vulkan shaders; libvulkan-dev brings the headers and the loader (opened at run time).
pkgs=(build-essential libcjson-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev libcurl4-openssl-dev glslc libvulkan-dev)
if [ "${1:-}" = "--test" ]; then
  # Mesa's lavapipe runs the Vulkan backend's tests on the CPU, under the validation layers.
  pkgs+=(clang libclang-rt-14-dev wamerican mesa-vulkan-drivers vulkan-validationlayers)
  # tests/cli/test_arm64.sh: the CPU kernels built for arm64 (NEON) and run under qemu-user; the C
  # library for the cross compiler is only its Recommends, so it is named too.
  pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# Reference implementations for the differential tests (npm, pinned by package-lock.json).
if [ "${1:-}" = "--test" ] && { [ ! -d tests/js/node_modules/@huggingface/jinja ] || [ ! -d tests/js/node_modules/openai-harmony ]; }; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
