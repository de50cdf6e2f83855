"""Every example under examples/ runs, on a small budget, to the verdict its config's header documents (and the
README's table repeats): the header's ``# Expected:`` line is the one source of truth, read by both tests. The
small budget (``SMALL``: fewer epochs, narrowed checks) keeps the full run's verdict and failing check; the full
runs' times are measured on a 2-core machine (OMP_NUM_THREADS=1) and written in the headers. Each example runs in
a copy under tmp_path (its make_example.py too), so the checkout stays clean; what the documented commands write
is covered by .gitignore."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit.checks.attack_validity import AttackValidity
from audit.checks.clean_accuracy import CleanAccuracy
from audit.checks.deployments import Deployments
from audit.checks.robustness import Robustness
from audit.cli import main
from audit.core.result import Verdict

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NAMES = sorted(p.parent.name for p in EXAMPLES.glob("*/advaudit.toml"))
EXPECTED = re.compile(r"^# Expected: (GO|NO-GO|INCOMPLETE) \(exit (\d)\), about (\d+ (?:s|min)) on a 2-core machine",
                      re.M)
WRITES = re.compile(r"^# Writes: (.+?) \(", re.M)


@dataclass(frozen=True)
class Small:
    """The small budget an example runs on here (``--set`` overrides) and the checks that fail in its full run and
    must fail here too (none for an INCOMPLETE)."""

    overrides: tuple[str, ...]
    fails: tuple[str, ...] = ()
    needs: str | None = None      # an optional package the example imports


SMALL = {
    "image": Small(('checks=["input_validation", "clean_accuracy", "robustness"]', "data.max_test=200"),
                   (Robustness.id,)),
    "tabular": Small(("training.epochs=20", 'checks=["input_validation", "clean_accuracy", "robustness", '
                      '"attack_validity"]')),
    "hf": Small(("training.epochs=4", 'checks=["clean_accuracy", "robustness"]', "data.max_test=200"),
                (CleanAccuracy.id, Robustness.id), needs="transformers"),
    "compression": Small(("training.epochs=8", 'checks=["clean_accuracy", "robustness", "deployments"]',
                          "data.max_test=150", "attacks.square_queries=50"), (Robustness.id, Deployments.id)),
}


def expected(name: str) -> tuple[str, int, str]:
    """(verdict label, exit code, time) from the header of examples/NAME/advaudit.toml."""
    m = EXPECTED.search((EXAMPLES / name / "advaudit.toml").read_text(encoding="utf-8"))
    assert m, f"examples/{name}/advaudit.toml has no '# Expected: VERDICT (exit N), about T on a 2-core machine'"
    return m.group(1), int(m.group(2)), m.group(3)


def readme_rows() -> dict[str, str]:
    """The README's examples table: example folder -> its row."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `examples/([a-z_]+)/` \|.*$", text, flags=re.M)}


def test_every_example_is_in_the_readme_table_with_its_documented_verdict_and_time():
    rows = readme_rows()
    assert sorted(rows) == NAMES and set(SMALL) == set(NAMES)
    for name in NAMES:
        verdict, code, time = expected(name)
        assert Verdict(verdict.lower()).exit_code == code, name   # the header's exit code is the verdict's
        cells = [c.strip() for c in rows[name].strip("|").split("|")]
        assert cells[2] == f"{verdict} (exit {code})" and cells[3] == f"about {time}", (name, cells)


def writes(name: str) -> list[str]:
    """What examples/NAME's header says its commands write (``# Writes: a, b/ (...)``), relative to its folder."""
    text = (EXAMPLES / name / "advaudit.toml").read_text(encoding="utf-8")
    return [w.strip() for m in WRITES.finditer(text) for w in m.group(1).split(",")]


def test_every_example_declares_a_threat_model_whose_eps_its_attack_grid_contains(tmp_path):
    from audit.config.load import load_config
    for name in NAMES:
        work = tmp_path / name
        shutil.copytree(EXAMPLES / name, work)
        for made in (w for w in writes(name) if not w.endswith("/")):
            (work / made).touch()   # the generated inputs the config names (loading checks they exist)
        cfg = load_config(work / "advaudit.toml")
        tm = cfg.threat_model
        assert tm.declared and tm.name, name
        assert any(abs(e - tm.eps) < 1e-12 for e in cfg.attacks.eps), (name, cfg.attacks.eps)
        assert cfg.attacks.norm == tm.norm and all(d.eps == tm.eps for d in cfg.defences), name


def test_what_the_examples_say_they_write_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    written = [f"examples/{n}/{w}" for n in NAMES for w in writes(n)]
    assert any(p.endswith("weights.safetensors") for p in written) and len(written) >= len(NAMES), written
    probe = [p + "report.html" if p.endswith("/") else p for p in written] + ["mlflow.db", "mlruns/x", "x-out/a"]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *probe], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert sorted(ignored) == sorted(probe)
    kept = subprocess.run(["git", "check-ignore", "--no-index", "examples/image/make_example.py"], cwd=ROOT,
                          capture_output=True, text=True)
    assert kept.returncode == 1   # the examples' own files stay tracked


def _make_inputs(work: Path, monkeypatch) -> None:
    """Run the example's make_example.py in its copy, as a user would (in-process: no second torch import)."""
    monkeypatch.delitem(sys.modules, "model", raising=False)   # its ``from model import build`` is the copy's
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("advaudit_example_maker", work / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(work)
    monkeypatch.delitem(sys.modules, "model", raising=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_example_runs_to_its_documented_verdict(name, tmp_path, monkeypatch, capsys):
    small = SMALL[name]
    if small.needs:
        pytest.importorskip(small.needs, reason=f"examples/{name} needs {small.needs} (pip install '.[test]')")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    work = tmp_path / name
    shutil.copytree(EXAMPLES / name, work)
    if (work / "make_example.py").is_file():
        _make_inputs(work, monkeypatch)
    argv = ["-q", "run", "--config", str(work / "advaudit.toml"), "--out", str(tmp_path / "out")]
    code = main(argv + [a for o in small.overrides for a in ("--set", o)])
    verdict, documented_code, _ = expected(name)
    assert code == documented_code, capsys.readouterr().err
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    assert r["verdict"] == verdict.lower()
    failed = {f["id"].split(":")[0] for f in r["findings"] if f["status"] == "fail"}
    assert failed == set(small.fails), failed
    assert r["threat_model"]["declared"] and r["variants"][0]["name"] == "baseline"
    what_it_shows(name, r)


def what_it_shows(name: str, r: dict) -> None:
    """What each example is there to show, read from its results."""
    if name == "image":   # the team's own files: their weights were loaded (98% clean), their factory, their mean
        assert r["variants"][0]["clean_accuracy"]["value"] > 0.9
        assert r["model"]["architecture"] == "DigitNet" and r["config"]["input"]["mean"] == [0.3]
    elif name == "tabular":   # a table, a defence, and perturbations inside every feature's observed range
        assert r["dataset"]["kind"] == "tabular" and [v["name"] for v in r["variants"]] == ["baseline", "fgsm_at"]
        validity = [f for f in r["findings"] if f["id"].startswith(f"{AttackValidity.id}:")]
        assert len(validity) == 2 and {f["status"] for f in validity} == {"pass"}
    elif name == "hf":    # a transformers model through the adapter, its processor's normalisation in [input]
        assert "ViT" in r["model"]["architecture"] and r["config"]["input"]["mean"] == [0.5]
    elif name == "compression":
        assert [v["name"] for v in r["variants"]] == ["baseline", "pgd_at"]
        rows = next(f for f in r["findings"] if f["id"] == Deployments.id)["details"]["rows"]
        worst = max(rows, key=lambda row: row["robust_drop"])   # the over-pruned one fails the threshold, by design
        assert [row["name"] for row in rows][:3] == ["int8-dynamic", "int8-static", "pruned-50"]
        assert worst["name"] == "pruned-95" and worst["robust_drop"] > 0.3
