"""results.json: the whole result, strict JSON (no NaN), validated by audit/schema/results.schema.json."""
from __future__ import annotations

import json

from audit.core.result import AuditResult


def render_json(result: AuditResult) -> str:
    return json.dumps(result.to_dict(), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
