#!/usr/bin/env bash
# Installs what vllmc needs on Debian 12 (build) and, with --test, what the tests need.
set -euo pipefail
pkgs=(build-essential libcjson-dev)
if [ "${1:-}" = "--test" ]; then pkgs+=(clang libclang-rt-14-dev); fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
