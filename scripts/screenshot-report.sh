#!/usr/bin/env bash
# A full-page PNG of a PCN's evidence pack, for people to look at.
#
#   scripts/screenshot-report.sh RUN_DIR PCN OUT.png [WIDTH]
#
# Writes the pack with `healthgap report` into a temporary folder, asks headless Chromium for
# the page's height (the pack's inline script records it as data-page-height), then takes one
# screenshot of the whole page at WIDTH CSS pixels (default 1000). Needs Chromium (Debian:
# apt-get install chromium) and healthgap on PATH, or set HEALTHGAP=path/to/healthgap (default:
# `cargo run --quiet --` in this repository).
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 RUN_DIR PCN OUT.png [WIDTH]" >&2
  exit 2
fi
run_dir=$1
pcn=$2
out=$3
width=${4:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)

browser=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then
    browser=$candidate
    break
  fi
done
if [ -z "$browser" ]; then
  echo "error: no Chromium found (apt-get install chromium)" >&2
  exit 2
fi

if [ -n "${HEALTHGAP:-}" ]; then
  healthgap=("$HEALTHGAP")
elif command -v healthgap >/dev/null 2>&1; then
  healthgap=(healthgap)
else
  healthgap=(cargo run --quiet --manifest-path "$here/Cargo.toml" --)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${healthgap[@]}" --quiet report --pcn "$pcn" --run "$run_dir" --out "$work/pack" >/dev/null
page=$(find "$work/pack" -name '*-evidence-pack.html' | head -n 1)
if [ -z "$page" ]; then
  echo "error: healthgap report wrote no page" >&2
  exit 1
fi

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars)
height=$("$browser" "${flags[@]}" --user-data-dir="$work/profile-dom" --window-size="$width,1000" \
  --dump-dom "file://$page" 2>/dev/null | grep -o 'data-page-height="[0-9]*"' | grep -o '[0-9]*' || true)
height=${height:-12000}
"$browser" "${flags[@]}" --user-data-dir="$work/profile-shot" --window-size="$width,$height" \
  --screenshot="$(realpath -m "$out")" "file://$page" >/dev/null 2>&1
echo "$out ($width x $height)"
