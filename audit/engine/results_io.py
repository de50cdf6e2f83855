"""Reading a results.json back, the one reader of every path (``advaudit render``, ``advaudit compare``, the API).

A results.json may come from anyone, so everything here is refused with a UsageError naming the field or the
limit, never a crash: a file over ``MAX_BYTES`` (checked before reading) or not a regular file; JSON nested deeper
than ``MAX_DEPTH`` (scanned before parsing, so the parser never recurses that deep); anything not strict JSON
(``NaN``, ``Infinity``, a number such as ``1e999`` that overflows); a schema major version this advaudit does not
know (any minor version of the known major is read); the first violation of the shipped JSON Schema, by its path;
then the typed result, values out of their range (``RANGES``: accuracies, intervals, shares and p-values in
[0, 1], counts and durations non-negative), and consistency the schema cannot state (the candidate is a variant,
the bits decode, the verdict is the one the gating findings and the evidence gaps give; a file written before
``evidence_gaps`` existed reads as having none).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from audit.checks import details_types
from audit.checks.clean_accuracy import CleanAccuracy
from audit.core.errors import UsageError
from audit.core.metrics import unpack_bits
from audit.core.result import SCHEMA_MAJOR, AuditResult
from audit.core.result_schema import shipped_schema
from audit.engine.judge import verdict

MAX_BYTES = 256 * 2**20   # 256 MiB: a results.json of a large audit is a few MB
MAX_DEPTH = 64            # nesting of arrays and objects; advaudit writes under 12
_CHUNK = 2**22

UNIT = (0.0, 1.0)
CLEAN = CleanAccuracy.id  # a clean accuracy field is named after the check's metric
NON_NEGATIVE = (0.0, math.inf)
# field name -> (low, high), checked on every dataclass of the typed result (details included) that has it
RANGES = {name: UNIT for name in (
    "robust_accuracy", "ci_low", "ci_high", "ece", "ece_under_attack", "wrong_confidence", "clean_p_value",
    "robust_p_value", "mcnemar_p", "non_iid_p_value", "accounted", "majority_share", "baseline_accuracy",
    "cleaned_accuracy", "corruption_accuracy", "auroc", "fpr_at_95_tpr", "recall_at_10pct_fpr",
    "false_positive_rate", "recall", "attack_success_rate", "small_cluster_share")}
RANGES.update({name: NON_NEGATIVE for name in (
    "n", "n_test", "n_train", "num_classes", "correct", "example_passes", "forward_passes", "train_epochs",
    "train_example_passes", "parameters", "threads", "bins", "count", "seconds", "wall_seconds",
    "train_seconds", "duration_seconds", "eps")})
# "value" is a proportion only in these classes (elsewhere it may be anything)
CLASS_RANGES = {("Accuracy", "value"): UNIT, ("Interval", "value"): UNIT, ("ReliabilityBin", "accuracy"): UNIT,
                ("ReliabilityBin", "confidence"): UNIT, ("TrainingHealthDetails", CLEAN): UNIT,
                ("BackdoorSelfTest", CLEAN): UNIT, ("GalleryExample", "confidence"): UNIT,
                ("GalleryExample", "clean_confidence"): UNIT}
# a finding's metrics (name, or name@eps) that are proportions; deltas, ratios, losses and counts are not
UNIT_METRIC = re.compile(r"(?!.*_delta$)(.*accuracy.*|.*_rate|.*_p_value|.*_share|ece(_.*)?|ci_low|ci_high|"
                         r"mean_confidence|adversarial_wrong_confidence|auroc_.*|selftest_.*)")

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)  # an unterminated one runs to the end


class _NotFinite:
    """What the parser leaves for a NaN, an Infinity or an overflowing number: refused by its field path."""

    def __init__(self, text: str):
        self.text = text


def _parse_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else _NotFinite(text)


def _major(version) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def check_depth(raw: bytes, where: str) -> None:
    """UsageError when arrays/objects nest deeper than MAX_DEPTH (brackets inside strings do not count)."""
    code = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    depth = 0
    for start in range(0, code.size, _CHUNK):
        c = code[start:start + _CHUNK]
        step = (c == ord("[")).astype(np.int64) + (c == ord("{")) - (c == ord("]")) - (c == ord("}"))
        run = np.cumsum(step) + depth
        if run.size and int(run.max()) > MAX_DEPTH:
            raise UsageError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels (the limit of a results.json)")
        depth = int(run[-1]) if run.size else depth


def _path(parts) -> str:
    return "/".join(str(p) for p in parts) or "(top level)"


def _check_plain(data, where: str) -> None:
    """Strict JSON: every number finite, nesting within MAX_DEPTH (also for data built in Python)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        x, at = stack.pop()
        if len(at) > MAX_DEPTH:
            raise UsageError(f"{where}: field {_path(at[:8])}/...: nested deeper than {MAX_DEPTH} levels")
        if isinstance(x, _NotFinite) or (isinstance(x, float) and not math.isfinite(x)):
            text = x.text[:40] if isinstance(x, _NotFinite) else repr(x)
            raise UsageError(f"{where}: field {_path(at)}: {text} is not a finite number (results.json is "
                             "strict JSON: no NaN or Infinity)")
        if isinstance(x, Mapping):
            stack.extend((v, at + (k,)) for k, v in x.items())
        elif isinstance(x, (list, tuple)):
            stack.extend((v, at + (i,)) for i, v in enumerate(x))


def _out_of_range(value, bounds) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not bounds[0] <= value <= bounds[1]


def _range_error(where, at, value, bounds) -> UsageError:
    want = "in [0, 1]" if bounds == UNIT else "non-negative"
    return UsageError(f"{where}: field {_path(at)}: {value!r} is out of range (must be {want})")


def check_ranges(result: AuditResult, where: str) -> None:
    """UsageError naming the first field of the typed result out of its range (RANGES, CLASS_RANGES, metrics)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(result, ())]
    while stack:
        obj, at = stack.pop()
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            cls = type(obj).__name__
            for f in dataclasses.fields(obj):
                value, here = getattr(obj, f.name), at + (f.name,)
                bounds = CLASS_RANGES.get((cls, f.name), RANGES.get(f.name))
                if bounds is not None and _out_of_range(value, bounds):
                    raise _range_error(where, here, value, bounds)
                if cls == "Finding" and f.name == "metrics" and isinstance(value, Mapping):
                    for k, m in value.items():
                        if UNIT_METRIC.fullmatch(str(k).split("@")[0]) and _out_of_range(m, UNIT):
                            raise _range_error(where, here + (k,), m, UNIT)
                stack.append((value, here))
        elif isinstance(obj, Mapping):
            stack.extend((v, at + (k,)) for k, v in obj.items())
        elif isinstance(obj, (list, tuple)):
            stack.extend((v, at + (i,)) for i, v in enumerate(obj))
    for i, v in enumerate(result.variants):
        a = v.clean_accuracy
        if a is not None and a.correct > a.n:
            raise UsageError(f"{where}: field variants/{i}/clean_accuracy/correct: {a.correct} correct of "
                             f"{a.n} points")


@functools.lru_cache(maxsize=1)
def _validator():
    """The shipped schema with schema_version relaxed to any minor version of the known major."""
    import jsonschema
    schema = dict(shipped_schema())
    schema["properties"] = {**schema["properties"],
                            "schema_version": {"type": "string", "pattern": rf"^{SCHEMA_MAJOR}\.[0-9]+$"}}
    return jsonschema.Draft202012Validator(schema)


def _schema_error(data, where: str) -> None:
    import jsonschema
    try:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    except (RecursionError, MemoryError, ValueError, TypeError, jsonschema.exceptions.SchemaError) as e:
        raise UsageError(f"{where}: cannot be checked against the results schema ({type(e).__name__})") from None
    if error is not None:
        at = _path(error.absolute_path)
        raise UsageError(f"{where}: field {at}: {' '.join(error.message[:200].split())}")


def parse_results(data, where: str = "results.json") -> AuditResult:
    if not isinstance(data, dict):
        raise UsageError(f"{where} is not an advaudit results.json (the top level is not an object)")
    version = data.get("schema_version")
    if _major(version) != SCHEMA_MAJOR:
        raise UsageError(f"{where}: schema_version {repr(version)[:60]} is not one this advaudit reads "
                         f"(major {SCHEMA_MAJOR}); re-render it with the advaudit that wrote it, or re-run the audit")
    _check_plain(data, where)
    _schema_error(data, where)
    try:
        result = AuditResult.from_dict(data, details_types())
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise UsageError(f"{where}: not a valid results.json ({type(e).__name__}: {str(e)[:200]})") from None
    check_ranges(result, where)
    names = [v.name for v in result.variants]
    if result.candidate not in names:
        raise UsageError(f"{where}: field candidate: {ascii(result.candidate[:80])} is not among the variants "
                         f"{ascii([n[:40] for n in names[:20]])}")
    implied = verdict(result.findings, result.evidence_gaps)
    if result.verdict is not implied:  # a verdict is the gating findings' and gaps' conclusion, never a field to edit
        gaps = f" and {len(result.evidence_gaps)} evidence gap(s)" if result.evidence_gaps else " and no evidence gap"
        raise UsageError(f"{where}: field verdict: {result.verdict.value!r} contradicts the gating findings{gaps}, "
                         f"which give {implied.value!r}")
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


def with_current_claims(result: AuditResult) -> AuditResult:
    """``result`` with its framework claims (NIST table, not measured, the residual-risk count) recomputed by
    today's rules and the checks' current declarations: ``advaudit render`` never shows a stored (older or
    crafted) table as it was stored."""
    from audit.checks import CHECKS
    from audit.frameworks.controls import refresh_claims
    return refresh_claims(result, {k: c.controls for k, c in CHECKS.items()})


def read_bytes(path: Path) -> bytes:
    """The bytes of a results.json (or of a directory's results.json), within MAX_BYTES."""
    path = Path(path)
    try:
        if path.is_dir():
            if not (path / "results.json").exists():
                raise UsageError(f"{path} is a directory without results.json")
            path = path / "results.json"
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path} is not a regular file")
        if st.st_size > MAX_BYTES:
            raise UsageError(f"{path}: {st.st_size} bytes, over the {MAX_BYTES // 2**20} MiB limit of a "
                             "results.json")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"results file not found: {path}") from None
    except OSError as e:
        raise UsageError(f"cannot read results file {path}: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise UsageError(f"{path}: over the {MAX_BYTES // 2**20} MiB limit of a results.json")
    return raw


def read_results(path: Path) -> AuditResult:
    """The typed result of a results.json, or of an output directory holding one; UsageError on any bad input."""
    path = Path(path)
    raw = read_bytes(path)
    where = str(path / "results.json" if path.is_dir() else path)
    check_depth(raw, where)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_NotFinite, parse_float=_parse_float)
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read results file {where}: not UTF-8 (byte {e.start})") from None
    except RecursionError:
        raise UsageError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, and integers over Python's digit limit
        raise UsageError(f"cannot read results file {where}: {' '.join(str(e).split())[:200]}") from None
    return parse_results(data, where)
