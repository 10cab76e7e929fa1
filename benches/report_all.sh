#!/usr/bin/env bash
# Time `healthgap report` for one PCN and for every PCN of an ICB (issue 7).
#
#   benches/report_all.sh RUN_DIR ICB PCN [REPEAT]
#
# HEALTHGAP names the binary (default: healthgap on PATH). Prints, per mode and repetition, the
# wall time, the CPU time (user + system: less sensitive to other work on a shared machine),
# peak memory, and the split the command itself reports (reading the run and the ICB's inputs
# once, then building and writing the packs, in parallel). Packs go to a temporary folder.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 RUN_DIR ICB PCN [REPEAT]" >&2
  exit 2
fi
run=$1 icb=$2 pcn=$3 repeat=${4:-3}
bin=${HEALTHGAP:-healthgap}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "| mode | run | wall s | CPU s | peak MiB | read run s | write packs s |"
echo "|---|---|---|---|---|---|---|"
for mode in pcn all; do
  for i in $(seq 1 "$repeat"); do
    rm -rf "$work/out"
    if [ "$mode" = pcn ]; then
      args=(report --pcn "$pcn" --run "$run" --out "$work/out")
    else
      args=(report --all --icb "$icb" --run "$run" --out "$work/out")
    fi
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$bin" "${args[@]}" >/dev/null 2>"$work/err"
    read -r wall user sys kib <"$work/time"
    note=$(grep -o 'read the run in [0-9.]* s, wrote the packs in [0-9.]* s' "$work/err" || true)
    read_s=$(echo "$note" | sed -E 's/read the run in ([0-9.]+) s.*/\1/')
    write_s=$(echo "$note" | sed -E 's/.*wrote the packs in ([0-9.]+) s/\1/')
    cpu=$(echo "$user + $sys" | bc)
    packs=$(find "$work/out" -name '*-evidence-pack.html' | wc -l)
    echo "| $mode ($packs packs) | $i | $wall | $cpu | $((kib / 1024)) | $read_s | $write_s |"
  done
done
