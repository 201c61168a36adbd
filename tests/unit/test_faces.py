"""The packages' small faces: every name resolves, and type checkers see the same names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import app.infrastructure.queue as queue_package
import app.worker as worker_package


@pytest.mark.parametrize("package", [queue_package, worker_package], ids=lambda p: p.__name__)
def test_every_name_of_the_face_resolves(package):
    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError):
        package.not_a_name  # noqa: B018


def test_type_checkers_see_the_same_names_as_the_face():
    tree = ast.parse(Path(queue_package.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    names = {alias.name for node in guarded.body for alias in node.names}  # type: ignore[attr-defined]
    assert names == set(queue_package.__all__)
