"""``python -m letzai.sim [--port N] [knobs...]``: serve the LetzAI simulator."""

from __future__ import annotations

import sys

from letzai.sim.server import main

if __name__ == "__main__":
    sys.exit(main())
