"""Logging for the box: stdlib ``logging`` to stderr.

Under systemd (``JOURNAL_STREAM`` set, and stderr really is that stream) journald adds its
own timestamps, so lines carry none; instead each starts with the syslog priority prefix
``<N>`` (sd-daemon(3)) so journald keeps the level. At a terminal, lines carry a timestamp.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

#: syslog priorities for the stdlib levels (sd-daemon(3): <3> error, <4> warning, ...).
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    """Format records as ``<N>logger: message`` for journald's stream transport."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 4)
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        # journald reads each line separately; prefix every line so a traceback keeps its level.
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines())


def under_journal(stream: TextIO, env: dict[str, str] | None = None) -> bool:
    """True when ``stream`` is connected to the journal (``JOURNAL_STREAM`` matches it)."""
    env = dict(os.environ) if env is None else env
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def setup_logging(
    level: int = logging.INFO, stream: TextIO | None = None, *, journal: bool | None = None
) -> logging.Handler:
    """Send the ``device`` loggers to ``stream`` (stderr); return the handler installed."""
    stream = sys.stderr if stream is None else stream
    if journal is None:
        journal = under_journal(stream)
    handler = logging.StreamHandler(stream)
    if journal:
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_bedside", False)]:
        root.removeHandler(old)
    handler._bedside = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
