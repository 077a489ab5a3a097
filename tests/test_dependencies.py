"""Every third-party module the code imports is declared in ``pyproject.toml``.

The import names are read from the source with ``ast``; they are mapped to distributions by
``importlib.metadata.packages_distributions()`` (the installed packages' own RECORD of which top-level
modules they provide), so no hand-written table decides what ``PIL`` or ``yaml`` is called on PyPI.
An import inside ``try: ... except ImportError`` is optional (``spaces``, present only on a
Hugging Face Space) and not required to be declared.

- ``quarf_hf/`` outside ``quarf_hf/space/``: the runtime ``dependencies``;
- ``quarf_hf/space/``: runtime plus the ``space`` extra;
- ``tests/`` and ``benchmarks/`` (run by ``tests/test_bench.py``): runtime plus the ``test`` extra.

And the converse: no runtime dependency is used only by the tests.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules of this repository that tests import by their bare name (tests/ is on sys.path).
LOCAL = {"quarf_hf", "conftest"} | {p.stem for d in ("tests", "benchmarks") for p in (ROOT / d).glob("*.py")}
# Runtime dependencies that no file imports by name but that the package needs all the same.
INDIRECT = {"torch": "every model", "pyyaml": "config files",
            # quarf_hf/data/photos.py reads image files inside them (found, not imported)
            "scikit-image": "the built-in photos", "scikit-learn": "the built-in photos",
            # torch.onnx.export(dynamo=True) imports it (quarf-hf export --format onnx)
            "onnxscript": "the ONNX exporter"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0))


def declared(*extras: str) -> set[str]:
    project = pyproject()["project"]
    names = {requirement_name(r) for r in project["dependencies"]}
    for extra in extras:
        names |= {requirement_name(r) for r in project["optional-dependencies"][extra]}
    return names


def _optional_import_nodes(tree: ast.AST) -> set[int]:
    """ids of import nodes inside a ``try`` whose handlers catch ImportError (optional imports)."""
    optional = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught |= {k.id for k in kinds if isinstance(k, ast.Name)}
        if caught & {"ImportError", "ModuleNotFoundError"}:
            for statement in node.body:
                optional |= {id(n) for n in ast.walk(statement) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return optional


def imported_modules(files) -> dict[str, set[str]]:
    """Top-level third-party module -> files importing it (required imports only)."""
    found: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        optional = _optional_import_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    found.setdefault(top, set()).add(path.name)
    return found


def distributions_of(module: str) -> set[str]:
    names = importlib.metadata.packages_distributions().get(module)
    if not names:
        pytest.fail(f"{module}: imported but not installed, so its distribution is unknown; "
                    f"install the project's extras or declare it")
    return {canonical(n) for n in names}


def undeclared(files, allowed: set[str]) -> dict[str, set[str]]:
    return {module: users for module, users in imported_modules(files).items()
            if not distributions_of(module) & allowed}


def package_files(space: bool):
    files = sorted((ROOT / "quarf_hf").rglob("*.py"))
    return [f for f in files if ("space" in f.relative_to(ROOT / "quarf_hf").parts[:1]) == space]


def test_package_imports_are_runtime_dependencies():
    missing = undeclared(package_files(space=False), declared())
    assert not missing, f"imported by quarf_hf but not in [project].dependencies: {missing}"


def test_space_imports_are_declared_in_the_space_extra():
    missing = undeclared(package_files(space=True), declared("space"))
    assert not missing, f"imported by quarf_hf/space but in neither dependencies nor the space extra: {missing}"


def test_test_imports_are_declared_in_the_test_extra():
    files = sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py"))
    missing = undeclared(files, declared("test"))
    assert not missing, f"imported by tests/ or benchmarks/ but in neither dependencies nor the test extra: {missing}"


def test_no_runtime_dependency_is_only_for_tests():
    used = set()
    for module in imported_modules(sorted((ROOT / "quarf_hf").rglob("*.py"))):
        used |= distributions_of(module)
    unused = declared() - used - set(INDIRECT)
    assert not unused, f"runtime dependencies that quarf_hf never imports: {unused}"


def test_the_space_requirements_list_the_runtime_dependencies():
    """spaces/quarf-demo/requirements.txt installs what quarf_hf needs on the Space."""
    lines = (ROOT / "spaces" / "quarf-demo" / "requirements.txt").read_text().splitlines()
    listed = {requirement_name(line) for line in lines if line.strip() and not line.startswith("#")}
    # gradio itself comes with the Space (sdk_version in its README); pandas feeds its plots
    assert listed == declared() | {"pandas"}


def test_the_checker_sees_an_undeclared_import(tmp_path):
    """The check itself can fail: a file importing an installed but undeclared module is reported."""
    stray = tmp_path / "stray.py"
    stray.write_text("import pytest\ntry:\n    import not_a_real_module\nexcept ImportError:\n    pass\n")
    assert set(undeclared([stray], declared())) == {"pytest"}
