# ruff: noqa: E402 - the sys.path fix below must run before Ralph is imported.
"""Validate xAPI statements against Ralph's pydantic models.

Runs inside Ralph's own virtualenv. Reads one JSON statement per line on stdin and
prints one JSON result per input line, in order:

    {"ok": true, "model": "VideoPlayed"}
    {"ok": false, "error": "...", "base": true}

A statement that no specific model selects is also checked against Ralph's base xAPI
statement model: `base` says whether that accepted it.

Every line gets an answer; a bad line never stops the run.
"""

import sys
from pathlib import Path

# Running this file puts tests/support on sys.path, where our ralph.py would shadow
# Ralph's `ralph` package; drop that entry (RalphLRS also runs us with `python -I`).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import json
from typing import Any

from pydantic import ValidationError
from ralph.exceptions import UnknownEventException
from ralph.models.selector import ModelSelector
from ralph.models.validator import Validator
from ralph.models.xapi.base.statements import BaseXapiStatement


def describe(err: ValidationError) -> str:
    # str(err) repeats the whole input and a docs URL per error; keep location + reason.
    problems = "; ".join(
        f"{'.'.join(str(part) for part in detail['loc']) or '<root>'}: {detail['msg']}"
        for detail in err.errors()
    )
    return f"invalid {err.title}: {problems}"


def validate_line(validator: Validator, line: str) -> dict[str, Any]:
    try:
        statement = json.loads(line)
    except json.JSONDecodeError as err:
        return {"ok": False, "error": f"invalid JSON: {err}"}
    if not isinstance(statement, dict):
        return {"ok": False, "error": "statement is not a JSON object"}
    try:
        model = validator.get_first_valid_model(statement)
    except UnknownEventException as err:
        try:
            BaseXapiStatement(**statement)
        except ValidationError as base_err:
            return {"ok": False, "error": f"no matching model: {err}; {describe(base_err)}"}
        return {"ok": False, "error": f"no matching model: {err}", "base": True}
    except ValidationError as err:
        # Ralph picks a model by verb and activity type, and those models are profiles' (its
        # virtual classroom's, edX's): a statement of another profile (a page's own, mirrored)
        # can fail the one picked and still be a valid xAPI statement. `base` says if it is.
        try:
            BaseXapiStatement(**statement)
        except ValidationError:
            return {"ok": False, "error": describe(err)}
        return {"ok": False, "error": describe(err), "base": True}
    # Anything else (e.g. a model bug) must not stop the rest of the batch.
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    return {"ok": True, "model": type(model).__name__}


def main() -> None:
    validator = Validator(ModelSelector(module="ralph.models.xapi"))
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(validate_line(validator, line)), flush=True)


if __name__ == "__main__":
    main()
