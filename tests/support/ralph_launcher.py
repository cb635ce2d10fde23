# ruff: noqa: E402 - the sys.path fix below must run before Ralph is imported.
"""Serve Ralph's LRS API with an append-only filesystem backend.

Runs inside Ralph's own virtualenv (never imported by xapitap or pytest):

    python ralph_launcher.py 127.0.0.1 8100

Ralph 5.1.0's fs backend writes with CREATE by default, so every POST after the
first one fails with 500 "already exists and overwrite is not allowed". Switching
the class default to APPEND before `ralph.api` instantiates the backend fixes it.
"""

import sys
from pathlib import Path

# Running this file puts tests/support on sys.path, where our ralph.py would shadow
# Ralph's `ralph` package; drop that entry (RalphLRS also runs us with `python -I`).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        sys.exit(f"usage: {argv[0]} HOST PORT")
    host, port = argv[1], int(argv[2])
    # Must happen before `ralph.api` is imported: it builds BACKEND_CLIENT at import.
    FSLRSBackend.default_operation_type = BaseOperationType.APPEND
    from ralph.api import app

    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True)


if __name__ == "__main__":
    main(sys.argv)
