"""Switch throughput and latency: ``python bench/switch.py [options]`` runs the load generator
(:mod:`switch.loadgen`; every option of ``python -m switch.loadgen --help`` applies)."""

import sys
from pathlib import Path

# ``python bench/switch.py`` puts bench/ first on sys.path, where this file would shadow the
# ``switch`` package: drop it.
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]

from switch.loadgen import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
