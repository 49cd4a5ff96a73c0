"""Contesto, composition only: settings, CLI, embedded stack launcher.

The exports load on first use, so the `contesto` command starts without importing the
stack it may not run (`contesto --help` in milliseconds, not seconds).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contesto._embedded import EmbeddedStore, EmbeddedStoreError
    from contesto._settings import StackSettings
    from contesto._stack import StackError, run_stack

__all__ = ["EmbeddedStore", "EmbeddedStoreError", "StackError", "StackSettings", "run_stack"]

_HOME = {
    "EmbeddedStore": "contesto._embedded",
    "EmbeddedStoreError": "contesto._embedded",
    "StackSettings": "contesto._settings",
    "StackError": "contesto._stack",
    "run_stack": "contesto._stack",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'contesto' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
