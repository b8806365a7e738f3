"""The injected clock: code that needs the time takes one, so tests can set it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]
