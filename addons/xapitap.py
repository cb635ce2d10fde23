"""xapitap: turn learning platforms' analytics traffic into xAPI statements.

Usage:
    mitmdump -s addons/xapitap.py [--set xapi_lrs_endpoint=URL --set xapi_lrs_username=USER
        --set xapi_lrs_password=PASS] [--set xapi_store=PATH] [--set xapi_answer_locally=true]

All logic lives in the `xapitap` package (src/xapitap); this file only loads it. Run from a
checkout, it finds the package in ../src even when it is not installed.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_SRC = _HERE.parent / "src"
# mitmproxy puts this file's folder first on sys.path, where this file's own name would hide
# the package of the same name.
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _HERE]
if (_SRC / "xapitap").is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from xapitap.addon import XapiTap  # noqa: E402

addons = [XapiTap()]
