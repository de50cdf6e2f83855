"""Regenerate what is generated from the code (a test fails when a shipped file and the code disagree):
audit/core/results.schema.json from the result model and every check's Details, and audit/config/init_template.toml:
its [checks] block from every check's Config, every other key line's value from the config's defaults, and the
comments that state the presets, the attack registry, the shipped policies and the data sources
(audit/checks/config_template.py). Run: python tools/write_schema.py"""
import json
from pathlib import Path

from audit.checks import details_types
from audit.checks.config_template import render_template
from audit.core.result_schema import SCHEMA_FILE, results_schema

if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    path = root / "audit" / "core" / SCHEMA_FILE
    path.write_text(json.dumps(results_schema(details_types()), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    template = root / "audit" / "config" / "init_template.toml"
    template.write_text(render_template(template.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {template}")
