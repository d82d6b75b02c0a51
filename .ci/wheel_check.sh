#!/usr/bin/env bash
# Wheel check: what a user gets from `pip install timetic` (a wheel, not the checkout) ranks models.
#
# Builds the wheel, installs it with --no-deps into a fresh virtual environment whose other
# dependencies come from the current one (a .pth line naming its site-packages: nothing is
# downloaded, no torch build is chosen), then, from a folder outside the repository, runs
# `timetic predict` on the example target and checks that it exits 0, prints a ranking of every
# model of the shipped knowledge base, and that the package, the KB and the zoo it used are the
# wheel's (timetic/_kb, timetic/zoo), not the checkout's.
#
#   bash .ci/wheel_check.sh            # with the project's virtual environment active
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="$(command -v python)"
work="$(mktemp -d "${TMPDIR:-/tmp}/timetic-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$SECONDS

# 1. the wheel (build isolation fetches hatchling like any pip install of the project)
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$repo"
wheel="$(ls "$work"/dist/timetic-*.whl)"
echo "wheel: $(basename "$wheel") ($(du -m "$wheel" | cut -f1) MB)"

# 2. a fresh venv with the wheel; its dependencies resolve in the current venv's site-packages
#    (a plain path line: that folder's own .pth files, e.g. an editable timetic, are not run)
"$py" -m venv --without-pip "$work/venv"
vpy="$work/venv/bin/python"
deps="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
own="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$deps" > "$own/_timetic_wheel_check_deps.pth"
"$py" -m pip --python "$vpy" install -q --no-deps --no-index "$wheel"

# 3. from outside the repository, with no KB setting: the packaged KB and zoo
mkdir -p "$work/user" && cd "$work/user"
unset TIMETIC_KB
export TIMETIC_CACHE_DIR="$work/cache"
"$vpy" - "$work/venv" <<'PY'
import sys
from pathlib import Path

import polars as pl

import timetic
from timetic.estimate import TimeTic
from timetic.kb import KnowledgeBase, default_kb_path, resolve_model_source

venv = Path(sys.argv[1]).resolve()
pkg = Path(timetic.__file__).resolve().parent
assert venv in pkg.parents, f"timetic imported from {pkg}, not from the wheel's venv {venv}"
kb_path = default_kb_path()
assert kb_path == pkg / "_kb", f"default KB is {kb_path}, not the packaged {pkg / '_kb'}"
kb = KnowledgeBase.open(kb_path)
for source in kb.models().get_column("source"):
    path = resolve_model_source(kb, source)
    if source.startswith("zoo:"):
        assert Path(path).is_dir() and pkg in Path(path).parents, f"{source}: {path} is not in the wheel"
est = TimeTic.from_kb()
assert est.kb.path == kb_path
print(f"wheel layout ok: package {pkg}, KB {kb_path} ({kb.models().height} models)")
PY
tt="$work/venv/bin/timetic"
example="$repo/examples/example_target.parquet"
# the quickstart's command, piped, every model without the zero-shot pass (fast) ...
"$tt" predict --target "$example" --quiet --no-zero-shot > "$work/table.txt"
# ... and with the zero-shot pass on two zoo models (they load from the wheel's timetic/zoo)
"$tt" predict --target "$example" --quiet --models patchtst-s,chronos-bolt-s --format json > "$work/zs.json"
"$vpy" - "$work/table.txt" "$work/zs.json" <<'PY'
import json
import sys

from timetic.kb import KnowledgeBase, default_kb_path

table, zs = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
models = KnowledgeBase.open(default_kb_path()).models().get_column("model_id").to_list()
assert "predicted fine-tuned MASE" in table, table
missing = [m for m in models if f" {m} " not in table]
assert not missing, f"not ranked: {missing}\n{table}"
rows = zs["rankings"]
assert sorted(r["model_id"] for r in rows) == ["chronos-bolt-s", "patchtst-s"], rows
assert all(r["zero_shot_mase"] is not None and r["zero_shot_mase"] > 0 for r in rows), rows
print(f"ranking ok: {len(models)} models ranked; zero-shot MASE " +
      ", ".join(f"{r['model_id']} {r['zero_shot_mase']:.3f}" for r in rows))
PY
echo "wheel check passed ($((SECONDS - start)) s)"
