"""Text that users typed, made safe to show on a terminal.

Control characters (escape sequences change a terminal's colours and title, backspaces hide
what came before) are shown as escapes instead (`\\x1b`), and so are the bidirectional overrides
that make text read differently from what it is. Renderers (the CLI, and the drivers' progress
lines until they report through callbacks) use this before they display anything a user wrote.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def literal(value: object) -> str:
    """The value as text with every control character shown as an escape."""
    return _CONTROL.sub(_visible, "" if value is None else str(value))
