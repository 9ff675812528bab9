from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts no test directory on sys.path; the helpers live next to this file.
sys.path.insert(0, str(Path(__file__).parent))
