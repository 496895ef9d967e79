"""``python -m device`` runs the ``bedside`` command line."""

import sys

from device.cli import main

sys.exit(main())
