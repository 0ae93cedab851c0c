"""JSON read as strict parsers read it: a bare NaN or Infinity is an error, not a float."""

from __future__ import annotations

import json
from typing import Any


def _refuse(constant: str) -> Any:
    raise ValueError(f"not JSON: {constant}")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse)


def strict_json_lines(text: str) -> list[Any]:
    return [strict_json(line) for line in text.splitlines()]
