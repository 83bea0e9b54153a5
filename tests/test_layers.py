"""The house's shape: no import circle in descent/, and no module importing one above its layer."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "descent"

# Lowest first. A module may import from its own layer or below; a package named here stands for
# all of its modules.
LAYERS: list[set[str]] = [
    {"descent.errors", "descent.options"},
    {"descent.frames", "descent.clock", "descent.allocator", "descent.parallel", "descent.smoothing",
     "descent.outputs", "descent.ffmpeg_binary"},
    {"descent.sources", "descent.normalise", "descent.order", "descent.telemetry"},
    {"descent.stabilise", "descent.altitude", "descent.sync"},
    {"descent.overlay", "descent.datatrack", "descent.encode"},
    {"descent.report"},
    {"descent.build"},
    {"descent.cli", "descent.__main__"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """descent modules imported anywhere in the file, lazy imports inside functions included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "descent" or m.startswith("descent.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path, name) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> int:
    if module == "descent":
        return 0  # the package itself holds only the version
    for level, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return level
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, module, target]))
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    # A package's __init__ imported by its own modules is a circle only when __init__ imports them back.
    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_no_module_imports_one_above_its_layer() -> None:
    upward = [f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
              for module, targets in _graph().items() for target in targets if _layer(target) > _layer(module)]
    assert not upward, "\n".join(upward)


def test_options_and_frames_need_no_opencv() -> None:
    # The option enums are shared with the CLI, whose --help must stay instant.
    stdlib = sys.stdlib_module_names
    for name in ("options.py", "clock.py", "errors.py"):
        tree = ast.parse((PACKAGE / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and not node.level}
        assert imported <= stdlib | {"descent", "__future__"}, (name, imported - stdlib)
    frames = ast.parse((PACKAGE / "frames.py").read_text())
    assert not any(isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("cv2", "descent.sources"))
                   for node in ast.walk(frames))
