#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install vbhc_model into it.
#   scripts/setup.sh         the package
#   scripts/setup.sh test    the package and its test extras
# Set PYTHON=/path/to/python3.12 to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

is_new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
  local c
  for c in "${PYTHON:-}" python3.12 python3.13 python3; do
    if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && is_new_enough "$c"; then
      echo "$c"; return 0
    fi
  done
  # Interpreters installed by pyenv but not selected on PATH.
  for c in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
    if [ -x "$c" ] && is_new_enough "$c"; then echo "$c"; return 0; fi
  done
  return 1
}

py=$(find_python) || { echo "setup: Python >= 3.12 not found; set PYTHON=/path/to/python3.12" >&2; exit 1; }
if [ ! -x .venv/bin/python ] || ! is_new_enough .venv/bin/python; then
  rm -rf .venv
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
# constraints.txt: the versions the tests last passed with (VBHC_UNPINNED=1: the newest allowed).
pins=(-c constraints.txt)
[ -n "${VBHC_UNPINNED:-}" ] && pins=()
.venv/bin/python -m pip install --quiet ${pins[@]+"${pins[@]}"} -e ".${extras}"
# Compile the package's bytecode once: where PYTHONDONTWRITEBYTECODE is set, Python would
# otherwise compile every module of an editable install again at each command's start.
.venv/bin/python -m compileall -q vbhc_model >/dev/null
