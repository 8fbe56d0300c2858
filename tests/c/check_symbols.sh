#!/usr/bin/env bash
# libpeerlb.so exports only peerlb_* symbols and carries SONAME libpeerlb.so.<major>.
set -euo pipefail
so=$1 major=$2
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [[ $soname != "libpeerlb.so.$major" ]]; then
  echo "FAIL: SONAME is '$soname', want libpeerlb.so.$major"; exit 1
fi
# Every defined dynamic symbol (functions and data); the version node name is not a symbol.
mapfile -t syms < <(nm -D --defined-only "$so" | awk '$2 != "A" {print $3}' | sed 's/@.*//' | sort -u)
bad=()
for s in "${syms[@]}"; do [[ $s == peerlb_* ]] || bad+=("$s"); done
if ((${#bad[@]})); then
  echo "FAIL: symbols outside peerlb_*: ${bad[*]}"; exit 1
fi
# Every function the header declares is exported, and nothing else.
declared=$(grep -oE '\bpeerlb_[a-z_]+\(' "$(dirname "$0")/../../include/peerlb.h" | tr -d '(' | sort -u)
exported=$(printf '%s\n' "${syms[@]}")
if [[ $declared != "$exported" ]]; then
  echo "FAIL: header functions and exported symbols differ:"; diff <(echo "$declared") <(echo "$exported") || true; exit 1
fi
echo "symbols: ${#syms[@]} exported, all peerlb_*; SONAME $soname"
echo "symbols: 1 passed, 0 failed"
