"""The layout is the architecture: each DVC stage depends on every module it imports, and an
unused profile overlay is outside every stage's hash."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("fetch", "prepare", "train", "analyze", "figures", "report")


def module_file(name: str) -> Path | None:
    """The source file of a pipelines module or package; None for anything outside the project."""
    if not name.startswith("pipelines"):
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every pipelines module a file imports, at any depth of its code (function-level imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from pipelines.core import params` imports the module pipelines.core.params
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if module_file(n) is not None}


def import_closure(module: str) -> set[Path]:
    """The files a module needs: itself, what it imports, transitively, and every enclosing package."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            path = module_file(".".join(parts[:depth]))
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(imported_modules(path))
    return seen


def stage_deps(stage: str) -> list[Path]:
    definition = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    deps = definition.get("do", definition)["deps"]
    return [ROOT / dep for dep in deps]


def covered(path: Path, deps: list[Path]) -> bool:
    return any(path == dep or dep in path.parents for dep in deps)


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_depends_on_every_module_it_imports(stage):
    deps = stage_deps(stage)
    closure = import_closure(f"pipelines.{stage}")
    # The top-level package's __init__ holds only a docstring; every stage shares it.
    missing = sorted(
        str(p.relative_to(ROOT)) for p in closure if not covered(p, deps) and p != ROOT / "pipelines" / "__init__.py"
    )
    assert not missing, f"dvc.yaml stage {stage!r} imports these but does not depend on them: {missing}"


def test_the_closure_sees_imports_inside_functions(tmp_path):
    """The check itself must fail on a forgotten dep: a stage importing training covers training."""
    closure = import_closure("pipelines.train")
    assert ROOT / "pipelines" / "training" / "trainer.py" in closure
    assert not covered(ROOT / "pipelines" / "training" / "trainer.py", stage_deps("analyze"))


def test_stage_modules_are_a_page_and_library_modules_stay_small():
    for stage in STAGES:
        lines = len((ROOT / "pipelines" / f"{stage}.py").read_text().splitlines())
        assert lines <= 150, f"pipelines/{stage}.py has {lines} lines; a stage is a page (at most 150)"
    for path in (ROOT / "pipelines").glob("*/*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 410, f"{path.relative_to(ROOT)} has {lines} lines; split it by what it holds"


def test_every_committed_figure_is_a_dvc_image_plot_and_every_plot_exists() -> None:
    """`dvc plots show` and `dvc plots diff` show the report's figures: each PNG the figures stage
    wrote is declared among dvc.yaml's plots, and nothing declared is missing."""
    declared = {
        next(iter(entry)) if isinstance(entry, dict) else entry
        for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    }
    images = {p for p in declared if p.endswith(".png")}
    drawn = {str(p.relative_to(ROOT)) for p in (ROOT / "reports" / "figures").glob("**/*.png")}
    assert drawn, "no committed figures under reports/figures"
    assert images == drawn
