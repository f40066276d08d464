#!/usr/bin/env bash
# Installs Debian's chromium for the account page's headless-browser test (Playwright drives
# /usr/bin/chromium; it never downloads a browser of its own). Idempotent: does nothing when
# chromium is already there. Needs root (or passwordless sudo) and apt-get; otherwise it says
# so and exits 0, and the browser test skips with that reason.
set -euo pipefail
CHROMIUM="${PHALANX_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-browser: no apt-get here; install chromium yourself (expected at $CHROMIUM)" >&2
	exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO="sudo -n"
	else
		echo "install-browser: not root and no passwordless sudo; cannot install chromium" >&2
		exit 0
	fi
fi
echo "install-browser: installing Debian's chromium" >&2
if $SUDO apt-get update -qq &&
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null &&
	[ -x "$CHROMIUM" ]; then
	echo "install-browser: $CHROMIUM ready" >&2
else
	echo "install-browser: apt-get could not install chromium; the browser test will skip" >&2
fi
