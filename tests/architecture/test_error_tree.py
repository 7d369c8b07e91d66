"""Every error a client can receive is a class of gateway/errors.py, drawn in its tree."""

from __future__ import annotations

import ast

from tests.architecture.imports import PACKAGE

ERRORS = PACKAGE / "errors.py"


def _error_classes() -> set[str]:
    tree = ast.parse(ERRORS.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def test_no_error_class_lives_outside_the_tree() -> None:
    tree_classes = _error_classes()
    outside = [
        f"{path.relative_to(PACKAGE.parent)}:{node.name}"
        for path in PACKAGE.rglob("*.py")
        if path != ERRORS
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and _base_names(node) & tree_classes
    ]
    assert outside == []


def test_every_error_class_is_drawn_in_the_docstring() -> None:
    docstring = ast.get_docstring(ast.parse(ERRORS.read_text())) or ""
    missing = sorted(name for name in _error_classes() if name not in docstring)
    assert missing == []
