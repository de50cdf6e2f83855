"""Regenerate audit/frameworks/nist_ai_rmf_1.0.json from the NIST AI RMF 1.0 core text (shared/frameworks).

Usage: python tools/import_nist_rmf.py ../shared/frameworks/nist_ai_rmf_1.0_core.md
"""
import json
import re
import sys
from pathlib import Path

FUNC = re.compile(r"^\*\*(GOVERN|MAP|MEASURE|MANAGE)\*\* — (.+)$")
CAT = re.compile(r"^- \*\*((?:GOVERN|MAP|MEASURE|MANAGE) \d+)\*\* — (.+)$")
SUB = re.compile(r"^\s+- `((?:GOVERN|MAP|MEASURE|MANAGE) \d+\.\d+)` (.+)$")


def parse(text: str) -> dict:
    functions, func, cat = [], None, None
    for line in text.splitlines():
        if m := FUNC.match(line):
            func = {"id": m[1], "text": m[2].strip(), "categories": []}
            functions.append(func)
        elif m := CAT.match(line):
            cat = {"id": m[1], "text": m[2].strip(), "subcategories": []}
            func["categories"].append(cat)
        elif m := SUB.match(line):
            cat["subcategories"].append({"id": m[1], "text": m[2].strip()})
    return {"framework": "NIST AI RMF 1.0", "source": "NIST AI 100-1 (January 2023), Tables 1-4",
            "functions": functions}


if __name__ == "__main__":
    data = parse(Path(sys.argv[1]).read_text(encoding="utf-8"))
    n = sum(len(c["subcategories"]) for f in data["functions"] for c in f["categories"])
    assert n == 72, f"expected 72 subcategories, parsed {n}"
    out = Path(__file__).resolve().parent.parent / "audit" / "frameworks" / "nist_ai_rmf_1.0.json"
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({n} subcategories)")
