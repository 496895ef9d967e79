"""``bedside`` with a loop that hangs: the watchdog test's fault, injected from outside.

Usage: ``python tests/support/hang_box.py SECONDS bedside-arguments...``. The product has no fault
switch of its own; this wrapper adds a loop task that hangs ``SECONDS`` after the start
through :data:`device.box.app.BOX_HOOKS`, then runs the ordinary command line.
"""

from __future__ import annotations

import logging
import sys
import time

from device.box import app
from device.cli import main

log = logging.getLogger("device.fault")


def hang_after(seconds: float) -> None:
    """Make every Box built from now on hang its loop ``seconds`` after it starts."""

    def hook(box: app.Box) -> None:
        def hang(deadline: float) -> None:
            log.warning("fault injection: the loop hangs now (after %g s)", seconds)
            while True:
                time.sleep(1.0)

        box.loop.add_task("fault", hang, seconds)

    app.BOX_HOOKS.append(hook)


if __name__ == "__main__":
    hang_after(float(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
