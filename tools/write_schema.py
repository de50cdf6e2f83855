"""Regenerate audit/core/results.schema.json from the result model and every check's Details (a test fails when
the shipped file and the model disagree): python tools/write_schema.py"""
import json
from pathlib import Path

from audit.checks import details_types
from audit.core.result_schema import SCHEMA_FILE, results_schema

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "audit" / "core" / SCHEMA_FILE
    path.write_text(json.dumps(results_schema(details_types()), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
