"""The package layout: what ships with a model folder imports nothing from outside its folder,
every command has its module, and the published variants are installed with the package."""

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "quarf_hf" / "models"
# What a file in quarf_hf/models may import besides its siblings: what a Hub user has anyway.
ALLOWED_TOP_LEVEL = {"torch", "transformers", "diffusers", "numpy", "PIL", "huggingface_hub", "safetensors"}
STDLIB = set(sys.stdlib_module_names)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) for every import statement in ``path``, including ones inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.py")), ids=lambda p: p.name)
def test_shipped_files_import_only_siblings_and_allowed_libraries(path):
    siblings = {p.stem for p in MODELS.glob("*.py")}
    for level, module in _imports(path):
        if level == 0:
            top = module.split(".")[0]
            assert top in ALLOWED_TOP_LEVEL | STDLIB, f"{path.name} imports {module!r}, which a Hub user may lack"
        else:
            # transformers copies single-dot imports only: `..x` or `.x.y` would break remote code.
            assert level == 1, f"{path.name}: {'.' * level}{module} reaches outside quarf_hf/models"
            assert module.split(".")[0] in siblings and "." not in module, f"{path.name}: .{module} is no sibling file"


def test_every_command_has_its_module():
    from quarf_hf.cli import COMMAND_MODULES, build_parser

    commands_dir = ROOT / "quarf_hf" / "commands"
    modules = {p.stem for p in commands_dir.glob("*.py")} - {"__init__"}
    assert {name.rsplit(".", 1)[-1] for name in COMMAND_MODULES} == modules
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    for name in ("demo", "build", "convert-contrique", "degradations", "train", "evaluate", "predict", "bench"):
        assert name in choices


def test_hub_configs_link_points_at_the_top_level_folder():
    from quarf_hf.hub.variants import HUB_CONFIGS, published_variants

    assert HUB_CONFIGS.resolve() == (ROOT / "hub_configs").resolve()
    assert "quarf-segformer-b0" in published_variants()


def test_configs_link_points_at_the_top_level_folder():
    """The demo reads its arms from configs/ through quarf_hf/configs (package data in a wheel)."""
    from quarf_hf.demo import configs_dir, restoration, segmentation

    assert configs_dir().resolve() == (ROOT / "configs").resolve()
    assert all((configs_dir() / f"{name}.yaml").is_file() for name in segmentation.ARM_NAMES)
    assert all((configs_dir() / "restoration" / f"{name}.yaml").is_file() for name in restoration.ARM_NAMES)


@pytest.mark.slow
def test_wheel_install_builds_a_published_variant(tmp_path):
    """A normal (non-editable) install from a built wheel finds hub_configs/ as package data."""
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheel_dir), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next(wheel_dir.glob("quarf_hf-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "quarf_hf/hub_configs/quarf-segformer-b0.yaml" in names
    assert "quarf_hf/configs/quarf.yaml" in names  # the demo's arms
    assert "quarf_hf/configs/restoration/quarf.yaml" in names  # the default (restoration) demo's arms
    # Unpack the wheel into its own site folder and run the CLI from there, outside the checkout.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    out = tmp_path / "built"
    code = (
        "import sys, quarf_hf; assert quarf_hf.__file__.startswith(sys.argv[1]), quarf_hf.__file__\n"
        "from quarf_hf.cli import main\n"
        "sys.exit(main(['build', 'quarf-restoration-small', '--out', sys.argv[2]]))\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    import os

    env = {**os.environ, **env}
    result = subprocess.run([sys.executable, "-c", code, str(site), str(out)], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def _module_graph(inside_functions: bool = False) -> dict[str, set[str]]:
    """quarf_hf's modules -> the package modules each imports when it is imported (module level,
    including under ``if``/``try``; imports inside functions run later and cannot make a circle), or
    anywhere in it with ``inside_functions``."""
    package = ROOT / "quarf_hf"
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        parent = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        nodes = ast.walk(tree) if inside_functions else [
            node for statement in tree.body
            for node in (ast.walk(statement) if isinstance(statement, (ast.If, ast.Try)) else [statement])]
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                base = parent.split(".")[: len(parent.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {module for module in found if module in modules and module != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[str]:
    """Every path of ``graph`` from a module back to itself, as ``a -> b -> a`` (a depth-first search from each)."""
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return sorted(set(circles))


def test_no_import_circle_in_the_package():
    """No module of quarf_hf imports, directly or through others, a module that imports it back."""
    graph = _module_graph()
    assert "quarf_hf.models.quarf" in graph["quarf_hf.models.conditioning"], "the graph must see relative imports"
    circles = import_circles(graph)
    assert not circles, "import circles:\n" + "\n".join(circles[:10])


def test_study_modules_import_no_circle_even_inside_functions():
    """No module of quarf_hf/study reaches itself through the study modules it imports, counting
    imports inside functions too (study/config.py once imported study/evaluation.py, which imports it)."""
    everywhere = _module_graph(inside_functions=True)
    study = {name for name in everywhere if name.startswith("quarf_hf.study.")}
    graph = {name: targets & study for name, targets in everywhere.items() if name in study}
    assert "quarf_hf.study.config" in graph["quarf_hf.study.evaluation"], "the graph must see the study's relative imports"
    circles = import_circles(graph)
    assert not circles, circles


def test_a_module_exports_only_what_it_defines():
    """A module's ``__all__`` names only what the module defines (package ``__init__`` files, which gather
    the public API, aside): a name is imported from the one module that defines it, never through another."""
    reexported, exporting = [], set()
    for path in sorted((ROOT / "quarf_hf").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        defined, exported = set(), []
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        defined.add(target.id)
                        if target.id == "__all__":
                            exported = [ast.literal_eval(item) for item in node.value.elts]
                            exporting.add(path.relative_to(ROOT).as_posix())
        reexported += [f"{path.relative_to(ROOT).as_posix()}: {name}" for name in exported if name not in defined]
    assert {"quarf_hf/insertion.py", "quarf_hf/models/modeling_quarf_adapter.py"} <= exporting, "the scan must see __all__"
    assert not reexported, "exported but defined elsewhere:\n" + "\n".join(reexported)


def test_every_repository_file_a_test_names_exists():
    """A path of this repository named in a test file (under tests, docs, quarf_hf, ...) exists: a
    docstring that sends the reader to a file points at a real one."""
    named = re.compile(r"\b(?:tests|quarf_hf|docs|benchmarks|configs|hub_configs|spaces)/[\w./-]+\.(?:py|md|yaml|json|txt)\b")
    missing = [f"{path.name}: {name}" for path in sorted((ROOT / "tests").glob("*.py"))
               for name in sorted(set(named.findall(path.read_text()))) if not (ROOT / name).exists()]
    assert not missing, "named but missing:\n" + "\n".join(missing)
