"""Contesto, composition only: settings, CLI, embedded stack launcher."""

from __future__ import annotations

from contesto._embedded import EmbeddedStore, EmbeddedStoreError
from contesto._settings import StackSettings
from contesto._stack import StackError, run_stack

__all__ = ["EmbeddedStore", "EmbeddedStoreError", "StackError", "StackSettings", "run_stack"]
