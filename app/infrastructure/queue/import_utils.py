"""Turn a job's dotted path into the callable it names, with four distinct, clear failures.

rq's `import_attribute` reports a missing dependency inside a job module as
"Invalid attribute name" (rq#2089). Here each failure has its own error, names the path,
and keeps the real cause chained.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable
from typing import Any

from app.infrastructure.queue.errors import (
    InvalidJobPathError,
    JobAttributeError,
    JobModuleImportError,
    JobModuleNotFoundError,
    JobNotCallableError,
)

_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def split_path(path: str) -> tuple[str, str]:
    """Split `package.module.function` into (`package.module`, `function`).

    Raises:
        InvalidJobPathError: `path` is not a dotted name with a module and an attribute.
    """
    if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
        raise InvalidJobPathError(str(path), "not a dotted 'package.module.function' path")
    module_name, _, attribute = path.rpartition(".")
    return module_name, attribute


def module_exists(path: str) -> bool:
    """Whether the module of `path` can be found, without importing (running) it.

    Parent packages are imported to look inside them, as Python's import system must.

    Raises:
        InvalidJobPathError: `path` is not a dotted path.
    """
    module_name, _ = split_path(path)
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def import_callable(path: str) -> Callable[..., Any]:
    """Import the module of `path` and return the callable it names.

    Raises:
        InvalidJobPathError: `path` is not a dotted path.
        JobModuleNotFoundError: the module does not exist.
        JobModuleImportError: the module exists but raised while importing (cause chained).
        JobAttributeError: the module has no such attribute.
        JobNotCallableError: the attribute is not callable.
    """
    module_name, attribute = split_path(path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_missing(module_name, exc):
            raise JobModuleNotFoundError(path, f"module {module_name!r} does not exist") from exc
        raise JobModuleImportError(path, f"module {module_name!r} failed to import: {exc!r}") from exc
    except Exception as exc:
        raise JobModuleImportError(path, f"module {module_name!r} failed to import: {exc!r}") from exc
    try:
        target = getattr(module, attribute)
    except AttributeError as exc:
        raise JobAttributeError(path, f"module {module_name!r} has no attribute {attribute!r}") from exc
    if not callable(target):
        raise JobNotCallableError(path, f"{attribute!r} is a {type(target).__name__}, not a callable")
    return target  # type: ignore[no-any-return]


def _is_missing(module_name: str, exc: ModuleNotFoundError) -> bool:
    """True when the module itself (or a parent package) is missing, not something it imports."""
    missing = exc.name or ""
    return module_name == missing or module_name.startswith(missing + ".")
