"""Make the repository's tools importable from the unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT / "tools", ROOT / "lab" / "images"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
