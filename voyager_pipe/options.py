"""The one helper section configs need: a dataclass field with a help text."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any


def option(default: Any = dataclasses.MISSING, help: str = "", **kwargs) -> Any:  # noqa: A002 - 'help' reads best here
    """A dataclass field with a one-line help text. Mutable defaults are copied per instance."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)
