"""DESIGN.md: engine/ never imports torch, models/, training/ or server/; server/ and
clients/ only use engine's public API. Checked on the source text, so it cannot be fooled
by what happens to be imported already."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "stylecast"
FORBIDDEN_IN_ENGINE = (
    "torch",
    "stylecast.models",
    "stylecast.training",
    "stylecast.server",
    "stylecast.export",
    "stylecast.clients",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_imports_no_torch_models_training_or_server():
    offenders = []
    for path in sorted((PKG / "engine").rglob("*.py")):
        for name in imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_ENGINE):
                offenders.append(f"{path.relative_to(PKG)} imports {name}")
    assert not offenders, offenders
