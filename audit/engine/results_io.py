"""Reading a results.json back: the schema version first (a major version this advaudit does not know is refused),
then the shipped JSON Schema (the first violation is named by its path), then the typed result with every check's
details typed, then consistency the schema cannot state (the candidate is a variant, the bits decode)."""
from __future__ import annotations

import json
from pathlib import Path

from audit.checks import details_types
from audit.core.errors import UsageError
from audit.core.metrics import unpack_bits
from audit.core.result import SCHEMA_MAJOR, AuditResult
from audit.core.schema import shipped_schema


def _major(version) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def parse_results(data, where: str = "results.json") -> AuditResult:
    if not isinstance(data, dict):
        raise UsageError(f"{where} is not an advaudit results.json (the top level is not an object)")
    version = data.get("schema_version")
    if _major(version) != SCHEMA_MAJOR:
        raise UsageError(f"{where}: schema_version {version!r} is not one this advaudit reads (major "
                         f"{SCHEMA_MAJOR}); re-render it with the advaudit that wrote it, or re-run the audit")
    import jsonschema
    validator = jsonschema.Draft202012Validator(shipped_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UsageError(f"{where}: field {at}: {error.message[:200]}")
    result = AuditResult.from_dict(data, details_types())
    names = [v.name for v in result.variants]
    if result.candidate not in names:
        raise UsageError(f"{where}: field candidate: {result.candidate!r} is not among the variants {names}")
    n = result.dataset.n_test
    for i, v in enumerate(result.variants):
        bits = [("correct_bits", v.correct_bits)] + [(f"robustness/{j}/correct_bits", p.correct_bits)
                                                     for j, p in enumerate(v.robustness)]
        for field, b in bits:
            try:
                if b:
                    unpack_bits(b, n)
            except ValueError as e:
                raise UsageError(f"{where}: field variants/{i}/{field}: not per-point bits for {n} test points "
                                 f"({e})") from None
    return result


def read_results(path: Path) -> AuditResult:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"results file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory without results.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read results file {path}: {e}") from None
    return parse_results(data, str(path))
