"""Every component documents its inputs and outputs where they are declared, and registers what it sets.

Read from the source (ast), because a field's documentation is an attribute docstring, which Python
keeps nowhere at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[2] / "platform" / "infra"


def _classes() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for module in sorted(INFRA.glob("*.py")):
        tree = ast.parse(module.read_text())
        found += [(module.name, node) for node in tree.body if isinstance(node, ast.ClassDef)]
    return found


def _is_component(node: ast.ClassDef) -> bool:
    return any(ast.unparse(base) == "pulumi.ComponentResource" for base in node.bases)


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any("dataclass" in ast.unparse(decorator) for decorator in node.decorator_list)


def _undocumented_fields(node: ast.ClassDef) -> list[str]:
    """Annotated class attributes not followed by a string literal (their attribute docstring)."""
    missing = []
    for index, statement in enumerate(node.body):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            following = node.body[index + 1] if index + 1 < len(node.body) else None
            documented = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            )
            if not documented:
                missing.append(statement.target.id)
    return missing


def _output_attributes(node: ast.ClassDef) -> set[str]:
    return {
        statement.target.id
        for statement in node.body
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and ast.unparse(statement.annotation).startswith("pulumi.Output")
    }


def _set_in_init(node: ast.ClassDef) -> set[str]:
    attributes: set[str] = set()
    for statement in ast.walk(node):
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and ast.unparse(target.value) == "self":
                    attributes.add(target.attr)
    return attributes


def _registered(node: ast.ClassDef) -> set[str]:
    """The `self.<attribute>` values passed to `register_outputs`, directly or through a method's dict."""
    methods = {item.name: item for item in node.body if isinstance(item, ast.FunctionDef)}
    for call in ast.walk(node):
        if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "self.register_outputs" and call.args):
            continue
        registered = call.args[0]
        if isinstance(registered, ast.Call) and ast.unparse(registered.func).startswith("self."):
            method = methods[ast.unparse(registered.func).removeprefix("self.")]
            registered = next(r.value for r in ast.walk(method) if isinstance(r, ast.Return) and r.value is not None)
        if isinstance(registered, ast.Dict):
            return {
                value.attr
                for value in registered.values
                if isinstance(value, ast.Attribute) and ast.unparse(value.value) == "self"
            }
    return set()


COMPONENTS = [(module, node) for module, node in _classes() if _is_component(node)]
ARGS = [(module, node) for module, node in _classes() if _is_dataclass(node)]


def test_the_tree_has_components_and_args() -> None:
    assert len(COMPONENTS) >= 10
    assert len(ARGS) >= 10


@pytest.mark.parametrize(("module", "node"), ARGS, ids=[f"{m}:{n.name}" for m, n in ARGS])
def test_every_args_field_is_documented_where_it_is_declared(module: str, node: ast.ClassDef) -> None:
    assert _undocumented_fields(node) == [], f"{module}: {node.name} fields without an attribute docstring"


@pytest.mark.parametrize(("module", "node"), COMPONENTS, ids=[f"{m}:{n.name}" for m, n in COMPONENTS])
def test_every_output_is_documented_set_and_registered(module: str, node: ast.ClassDef) -> None:
    outputs = _output_attributes(node)
    assert outputs, f"{module}: {node.name} declares no outputs"
    undocumented = [name for name in _undocumented_fields(node) if name in outputs]
    assert undocumented == [], f"{module}: {node.name} outputs without an attribute docstring"
    assert outputs - _set_in_init(node) == set(), f"{module}: {node.name} declares outputs it never sets"
    assert outputs - _registered(node) == set(), f"{module}: {node.name} sets outputs it does not register"
