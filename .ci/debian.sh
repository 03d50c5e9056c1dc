#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real: Chromium renders the docs
# site headless (tests/test_site.py). Skips what is already installed; never asks.
set -euo pipefail

missing=()
for package in "$@"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
