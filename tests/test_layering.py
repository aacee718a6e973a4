"""Every import inside autotts points down the layers (parsed with ast, lazy imports included).

Data flows one way (DESIGN.md): store -> env -> controller -> evaluate/discovery
-> executor -> serve. A package may import only packages of strictly lower
layers; packages sharing a layer never import each other. Training code
(discovery, scale) is imported by nothing below the commands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import autotts

ROOT = Path(autotts.__file__).parent

# Lowest first. "autotts" is the package root (__version__); "serve" is allowed before it exists.
LAYERS: list[set[str]] = [
    {"autotts", "errors", "_malloc"},
    {"answers"},         # canonical answers, answer extraction
    {"store"},
    {"env"},
    {"controllers"},
    {"artifact"},        # exported controller: controller.pt(2) + manifest.json
    {"evaluate"},
    {"executor", "scale"},  # live runtime and backends | population sharding (a service of discovery)
    {"collect", "discovery"},
    {"serve"},
    {"commands"},
    {"cli"},
]
TRAINING = {"discovery", "scale"}
MAY_IMPORT_TRAINING = TRAINING | {"commands", "cli"}
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def package_of(module: str) -> str:
    """'autotts.executor.export' -> 'executor'; 'autotts' -> 'autotts'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every autotts module `path` imports, at any depth of the file (relative imports resolved)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            if base == "autotts":  # `from autotts import store` imports the package store
                found.update(f"autotts.{a.name}" for a in node.names if (ROOT / a.name).exists()
                             or (ROOT / f"{a.name}.py").exists())
    return {m for m in found if m == "autotts" or m.startswith("autotts.")}


def import_edges() -> list[tuple[str, str, str]]:
    """(importing file, its package, imported package) for every import across packages."""
    edges = []
    for path in sorted(ROOT.rglob("*.py")):
        source = package_of(module_name(path))
        for target in {package_of(m) for m in imported_modules(path)} - {source}:
            edges.append((str(path.relative_to(ROOT.parent)), source, target))
    return edges


def violations(edges: list[tuple[str, str, str]]) -> list[str]:
    bad = []
    for where, source, target in edges:
        if RANK[target] >= RANK[source]:
            bad.append(f"{where}: {source} (layer {RANK[source]}) imports {target} (layer {RANK[target]})")
        elif target in TRAINING and source not in MAY_IMPORT_TRAINING:
            bad.append(f"{where}: {source} imports training code ({target})")
    return bad


def test_every_package_has_a_layer() -> None:
    packages = {package_of(module_name(p)) for p in ROOT.rglob("*.py")}
    assert packages - set(RANK) == set(), "add the new package to LAYERS"
    assert packages >= set(RANK) - {"serve"}, "a layer names a package that is gone"


def test_every_import_points_down_the_layers() -> None:
    edges = import_edges()
    assert len(edges) > 40  # the parser found the real imports, lazy ones included
    assert ("autotts/executor/intervals.py", "executor", "answers") in edges
    assert violations(edges) == []


def test_the_checker_sees_an_upward_import() -> None:
    """The rule bites: the two circles this layering removed would both be reported."""
    edges = [("autotts/executor/intervals.py", "executor", "collect"),
             ("autotts/scale/ranks.py", "scale", "discovery"),
             ("autotts/serve/app.py", "serve", "discovery"),
             ("autotts/evaluate/cli_eval.py", "evaluate", "executor")]
    assert len(violations(edges)) == 4
