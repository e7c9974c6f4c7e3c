"""Build the lesson notebooks (student and solution versions) from this one source.

    python tools/build_notebooks.py        # writes notebooks/*.ipynb and notebooks/solutions/*.ipynb

Edit the lessons here, rebuild, commit the .ipynb files (they carry no outputs).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbgen import Exercise, code, md, setup_cell, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "notebooks"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lessons import LESSONS  # noqa: E402


def main() -> None:
    for name, cells in LESSONS.items():
        write(name, cells, ROOT)
        print("wrote", name)


if __name__ == "__main__":
    main()

__all__ = ["Exercise", "code", "md", "setup_cell"]
