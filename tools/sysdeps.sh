#!/usr/bin/env bash
# Check (and, as root with apt-get, install) the system packages the RTL flow needs.
#
#   tools/sysdeps.sh [NEED...]        NEED: base icarus fst ccache venv all   (default: base)
#
# Always reports every missing package. As root with apt-get available it installs all of them
# (one `apt-get update` + `apt-get install`). Otherwise it prints the apt command and exits 1 if
# something in NEED is missing (ccache is only ever a recommendation).
#   base   : g++, make, perl (Verilator's C++ build)       venv : python3 -m venv (python3-venv)
#   icarus : iverilog (SIM=icarus)                          fst  : lz4.h + zlib.h (FST waves)
#   ccache : ccache (recommended: Verilator rebuilds ~1 s instead of ~6 s)
set -euo pipefail

need=" ${*:-base} "
[[ "$need" == *" all "* ]] && need=" base icarus fst ccache venv "

declare -A pkg_of=()       # missing item -> Debian package
declare -A group_of=()     # missing item -> NEED group
miss() { pkg_of[$1]=$2; group_of[$1]=$3; }

command -v g++      >/dev/null || miss g++ g++ base
command -v make     >/dev/null || miss make make base
command -v perl     >/dev/null || miss perl perl base
command -v iverilog >/dev/null || miss iverilog iverilog icarus
command -v ccache   >/dev/null || miss ccache ccache ccache
[ -f /usr/include/lz4.h ]  || miss lz4.h liblz4-dev fst
[ -f /usr/include/zlib.h ] || miss zlib.h zlib1g-dev fst
python3 -c 'import ensurepip, venv' 2>/dev/null || miss python3-venv python3-venv venv

[ ${#pkg_of[@]} -eq 0 ] && exit 0

pkgs=$(printf '%s\n' "${pkg_of[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "sysdeps: installing ${pkgs}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${pkgs} >/dev/null
    exit 0
fi

echo "sysdeps: missing system packages: ${pkgs}" >&2
echo "sysdeps: install with:  sudo apt-get install -y ${pkgs}" >&2
fatal=""
for item in "${!pkg_of[@]}"; do
    g=${group_of[$item]}
    if [ "$g" != ccache ] && [[ "$need" == *" $g "* ]]; then fatal+=" $item"; fi
done
if [ -n "$fatal" ]; then
    echo "sysdeps: ERROR: required for this target:${fatal} (not root or no apt-get, cannot install)" >&2
    exit 1
fi
[ -n "${pkg_of[ccache]:-}" ] && echo "sysdeps: note: without ccache every Verilator build takes ~6 s" >&2
exit 0
