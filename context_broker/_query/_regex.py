"""Regular expressions a client sends (idPattern, q's `~=`), compiled for a linear-time engine.

RE2 matches in time linear in the text whatever the pattern's shape, so a pattern built to
backtrack costs what any other does; it refuses the constructs that need backtracking
(backreferences, lookaround), which are then a 400 like any other syntax error. A pattern
is at most MAX_PATTERN_LENGTH characters and its compiled program at most
_MAX_PROGRAM_BYTES, so compiling is bounded too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2

from context_broker._errors import BadRequestData

MAX_PATTERN_LENGTH = 1024
_MAX_PROGRAM_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Regex:
    """A compiled pattern: `search` says whether it occurs in a text (MongoDB's $regex rule)."""

    pattern: str
    _compiled: Any

    def search(self, text: str) -> bool:
        return self._compiled.search(text) is not None


def compile_regex(pattern: str, parameter: str) -> Regex:
    """Compile `pattern` for linear-time matching; BadRequestData naming `parameter` if it is
    longer than MAX_PATTERN_LENGTH characters or RE2 refuses it."""
    compiled = _compile(pattern)
    if isinstance(compiled, str):
        raise BadRequestData(f"{parameter}: {compiled}")
    return Regex(pattern, compiled)


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used, or None when it can."""
    compiled = _compile(pattern)
    return compiled if isinstance(compiled, str) else None


def _compile(pattern: str) -> Any:
    """The compiled pattern, or the text of the problem."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return (
            f"a regular expression may have at most {MAX_PATTERN_LENGTH} characters; "
            f"this one has {len(pattern)}"
        )
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_PROGRAM_BYTES
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0].decode(errors="replace") if error.args else str(error)
        return (
            f"invalid regular expression ({reason}; RE2 syntax, without backreferences "
            "or lookaround)"
        )


def anchored_prefix(pattern: str) -> str:
    """A literal text that every match of `pattern` starts the string with; "" when none is
    known. Lets a store narrow the candidates to an index range before the test here."""
    if not pattern.startswith("^") or "|" in pattern or "(?" in pattern:
        return ""  # an alternative, or a flag such as (?m), may match elsewhere
    low, high = compile_regex(pattern, "pattern")._compiled.possiblematchrange(64)
    common = bytearray()
    for a, b in zip(low, high, strict=False):
        if a != b:
            break
        common.append(a)
    return bytes(common).decode("utf-8", errors="ignore")
