"""Moved to :mod:`letzflow.engine.polling` (when to look again is an engine decision).

Kept so the wire's webhook module, which reads the typical durations, imports what it always did.
"""

from __future__ import annotations

from letzflow.engine.polling import DEFAULT_EXPECTED

__all__ = ["DEFAULT_EXPECTED"]
