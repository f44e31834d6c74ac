#!/usr/bin/env bash
# `make check-install`: install the package as a user would (`pip install .`, not editable) into a
# fresh virtual environment and run it from a folder outside the checkout: the presets and every
# module must travel with the package. The environment sees the system's site-packages, so numba,
# scipy, PySpice, ... are reused rather than downloaded; the check fails unless the project itself
# is imported from the environment (not from the checkout or an editable install).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv --system-site-packages "$work/venv"
venv="$work/venv"
rm -rf "$repo/build"          # setuptools' staging folder: a stale one can carry deleted files into the wheel
"$venv/bin/pip" install --quiet --disable-pip-version-check "$repo"
rm -rf "$repo/build"
mkdir "$work/outside"
cd "$work/outside"
unset PYTHONPATH
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for pkg in infra training hwmodel netlists energy ttfs; do
  where=$("$venv/bin/python" -c "import $pkg; print($pkg.__file__)")
  case "$where" in
    "$site"/*) ;;
    *) echo "check-install: $pkg is imported from $where, not from the environment's $site" >&2; exit 1 ;;
  esac
done
if "$venv/bin/ttfs" --help | grep -q -- '--version'; then
  "$venv/bin/ttfs" --version
else
  "$venv/bin/ttfs" --help >/dev/null      # no --version yet
fi
"$venv/bin/ttfs" presets
"$venv/bin/ttfs" demo --profile tiny --out "$work/outside/demo" --quiet
"$venv/bin/python" - "$work/outside/demo/summary.json" <<'EOF'
import json, sys
summary = json.load(open(sys.argv[1]))
assert summary["rows"]["baseline"]["circuit"]["n_ok"] == 1, summary["rows"]["baseline"]["circuit"]
assert summary["provenance"]["ttfs-codesign"], summary["provenance"]
EOF
echo "check-install: pip install . into a fresh environment, ttfs presets and ttfs demo --profile tiny" \
     "from outside the checkout passed in $(( $(date +%s) - start )) s"
