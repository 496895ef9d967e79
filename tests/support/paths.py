"""Where the tests find the repository and its data."""

from __future__ import annotations

from pathlib import Path

#: The repository's root.
REPO = Path(__file__).resolve().parents[2]
#: Real PPG recordings, in the repository with their licences (tests/data/ppg/README.md).
PPG_DATA = REPO / "tests" / "data" / "ppg"
