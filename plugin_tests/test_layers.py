"""The package's layers import only downwards: nets < weights < backends < filters <
{training, evaluation, farm} < cli; training and evaluation never import each other.

Every import statement of the source is scanned (module level and inside functions), relative
(``from ..x import``) and absolute (``import vsvqdsr.x``) alike.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PKG = ROOT / "vsvqdsr"

#: Layer rank; a module may import a package of lower or equal rank only.
RANK = {"nets": 0, "weights": 1, "backends": 2, "filters": 3, "training": 4, "evaluation": 4, "farm": 4, "cli": 5}
#: Pairs of the same rank that must not import each other.
APART = {("training", "evaluation"), ("evaluation", "training")}
#: Top-level modules of the package usable from every layer (version string, the package facade,
#: the benchmark-set guard shared by training and evaluation, the numpy damage operations shared by
#: the benchmark's "old footage" severities and the training degradations, the package logger).
ROOT_MODULES = {"_version", "__init__", "provenance", "damage", "log"}


def _layer(parts: tuple[str, ...]) -> str | None:
    return parts[0] if parts and parts[0] in RANK else None


def _imports(path: Path, root: Path = PKG) -> list[tuple[int, tuple[str, ...]]]:
    """``(line, target parts inside vsvqdsr)`` for every import of the package in ``path``."""
    rel = path.relative_to(root).with_suffix("").parts
    pkg = rel[:-1] if rel[-1] != "__init__" else rel[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "vsvqdsr" or a.name.startswith("vsvqdsr."):
                    out.append((node.lineno, tuple(a.name.split(".")[1:])))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                mod = tuple(node.module.split(".")) if node.module else ()
                targets = [base + mod] if mod else [base + (a.name,) for a in node.names]
            elif node.module and (node.module == "vsvqdsr" or node.module.startswith("vsvqdsr.")):
                mod = tuple(node.module.split(".")[1:])
                targets = [mod] if mod else [(a.name,) for a in node.names]
            else:
                continue
            out.extend((node.lineno, t) for t in targets)
    return out


def violations(root: Path = PKG) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        src = _layer(path.relative_to(root).parts)
        for line, target in _imports(path, root):
            dst = _layer(target)
            where = f"{path.relative_to(root.parent)}:{line} imports vsvqdsr.{'.'.join(target)}"
            if src is None:
                # the package facade (vsvqdsr.models(), lazy Upscale/Degrade) sits on the filters;
                # the other top-level modules sit below every layer
                top = path.relative_to(root).parts[0]
                if dst is not None and (top != "__init__.py" or RANK[dst] > RANK["filters"]):
                    bad.append(f"{where} (top-level modules import no layer; the facade at most filters)")
                continue
            if dst is None:
                if target and target[0] not in ROOT_MODULES and target[0] != "models":
                    bad.append(f"{where} (unknown layer)")
                continue
            if RANK[dst] > RANK[src] or (src, dst) in APART:
                bad.append(f"{where} ({src} may not import {dst})")
    return bad


def test_no_layer_imports_a_higher_one():
    assert violations() == []


def test_the_scan_sees_function_level_and_absolute_imports(tmp_path):
    pkg = tmp_path / "vsvqdsr"
    (pkg / "nets").mkdir(parents=True)
    (pkg / "training").mkdir()
    (pkg / "nets" / "x.py").write_text("def f():\n    from ..weights import loading\n")
    (pkg / "training" / "y.py").write_text("import vsvqdsr.evaluation.metrics\nfrom vsvqdsr import cli\n")
    found = violations(pkg)
    assert len(found) == 3, found
    assert "nets may not import weights" in found[0]
    assert any("training may not import evaluation" in f for f in found)
    assert any("training may not import cli" in f for f in found)
