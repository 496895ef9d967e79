"""The lab's modules (tools/lab) for the tests: pure parsing and decisions, no QEMU needed."""

import importlib
import sys
from pathlib import Path
from types import ModuleType

LAB = Path(__file__).resolve().parents[2] / "tools" / "lab"


def lab_module(name: str) -> ModuleType:
    """Import tools/lab/<name>.py (the lab runs its modules as top-level ones)."""
    if str(LAB) not in sys.path:
        sys.path.insert(0, str(LAB))
    return importlib.import_module(name)
