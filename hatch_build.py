"""Wheel build hook: ship the default knowledge base inside the package.

A wheel holds only the ``timetic`` package, but ``timetic predict`` needs a knowledge base. This hook
copies the default KB folder (``timetic.kb.DEFAULT_KB_DIR`` at the repository root, read from
``timetic/kb.py`` without importing timetic) into the wheel as ``timetic/_kb``, where
:func:`timetic.kb.default_kb_path` finds it. Only the KB's own files go in (``kb.json``, the parquet
tables, its README data card), never lock or staging files. The model zoo (``timetic/zoo``) is part
of the package already. The build fails when the KB folder has no ``kb.json``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def default_kb_dir(root: Path) -> str:
    """The value of ``DEFAULT_KB_DIR = "..."`` in ``timetic/kb.py``."""
    tree = ast.parse((root / "timetic" / "kb.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id == "DEFAULT_KB_DIR":
            return ast.literal_eval(node.value)
    raise RuntimeError("timetic/kb.py has no DEFAULT_KB_DIR = '...' line")


def kb_files(kb: Path) -> list[Path]:
    """The files of KB folder ``kb`` that a wheel ships."""
    return sorted(p for p in kb.iterdir() if p.is_file() and (p.name in ("kb.json", "README.md") or p.suffix == ".parquet"))


class KnowledgeBaseHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install reads the KB from the checkout
        root = Path(self.root)
        name = default_kb_dir(root)
        kb = root / name
        if not (kb / "kb.json").is_file():
            raise RuntimeError(f"the default knowledge base {kb} has no kb.json; the wheel would ship without one")
        for f in kb_files(kb):
            build_data["force_include"][str(f)] = f"timetic/_kb/{f.name}"
