"""The toolkit's modules import each other in one direction only: no cycle, counting the imports inside
functions too, so no module needs a deferred import to load."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

TOOLKIT = Path(__file__).resolve().parents[2] / "toolkit"


def _toolkit_imports(path: Path) -> set[str]:
    """The toolkit modules `path` imports anywhere in its code (module level, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "toolkit":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolkit."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("toolkit."))
    return found


def test_toolkit_modules_import_each_other_without_a_cycle() -> None:
    # The package's `__init__` only names the modules for lazy lookup; it is not part of the graph.
    graph = {path.stem: _toolkit_imports(path) for path in TOOLKIT.glob("*.py") if path.stem != "__init__"}
    assert {"tracking", "evaluation", "arrays", "model_logging"} <= set(graph)
    for module, imports in graph.items():
        assert imports <= set(graph), f"toolkit/{module}.py imports unknown toolkit modules {imports - set(graph)}"
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"toolkit modules import each other in a cycle: {' -> '.join(exc.args[1])}") from None
    assert "evaluation" in graph["tracking"]
    assert "tracking" not in graph["evaluation"]
