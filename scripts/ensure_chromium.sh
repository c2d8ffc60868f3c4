#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests when it is missing (root with apt only).
# Never fails the build: without it the browser tests report a clear skip reason.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium for the browser tests ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped"
else
  echo "note: chromium not found; install it (e.g. apt-get install chromium) to run the browser tests"
fi
exit 0
