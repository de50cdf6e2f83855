"""Issue 16's targets end to end: a supplied FGSM-overfitted checkpoint is NO-GO under a threat model at the eps
where its FGSM/PGD gap shows, with validity check C16 named in the summary; a config declaring only an 8/255 threat
model runs with the default policy."""
from __future__ import annotations

import json

import pytest

from audit.cli import main

pytestmark = pytest.mark.slow


def test_a_supplied_fgsm_overfitted_checkpoint_is_no_go_naming_c16(fgsm_overfit28, tmp_path, capsys):
    """The session's fgsm_overfit28 (tests/fixtures_hard.py: FGSM-trained at eps 0.3, one torch thread, so its
    weights do not depend on the session: clean 92%, FGSM 87.6%, PGD-20 0.4%) supplied as a checkpoint."""
    m = fgsm_overfit28.model_table()
    kwargs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in m["kwargs"].items())
    (tmp_path / "advaudit.toml").write_text(
        'checks = ["input_validation", "clean_accuracy", "robustness", "attack_validity"]\n'
        '[data]\nsource = "digits28"\n'
        '[threat_model]\neps = 0.3\nname = "digits-linf-0.3"\n'
        '[attacks]\npreset = "quick"\nprobe_points = 96\nsquare_points = 16\nsquare_queries = 100\n'
        f'[model]\nfactory = "{m["factory"]}"\nkwargs = {{ {kwargs} }}\nweights = {json.dumps(m["weights"])}\n')
    d = tmp_path
    code = main(["run", "--config", str(d / "advaudit.toml"), "--out", str(d / "out")])
    assert code == 1, capsys.readouterr().err
    r = json.loads((d / "out" / "results.json").read_text())
    av = next(f for f in r["findings"] if f["check"] == "attack_validity")
    c16 = next(c for c in av["details"]["validity_checks"] if c["id"] == "C16")
    assert c16["status"] == "fail" and any(row["gap"] > 0.2 for row in c16["values"]["rows"]), c16
    assert av["status"] == "fail" and "C16" in av["summary"]
    summary = (d / "out" / "summary.md").read_text()
    assert "C16" in summary and "NO-GO" in summary and "digits\\-linf\\-0\\.3" in summary  # Markdown-escaped


def test_a_config_with_only_an_8_255_threat_model_runs_with_the_default_policy(tmp_path, capsys):
    # the threat model alone, plus (only to keep CI fast) fewer checks, epochs and probe points
    (tmp_path / "advaudit.toml").write_text(
        'checks = ["input_validation", "clean_accuracy", "training_health", "robustness", "attack_validity"]\n'
        '[threat_model]\neps = 0.0313725\n[training]\nepochs = 3\n[attacks]\npreset = "quick"\n'
        'probe_points = 64\nsquare_points = 8\nsquare_queries = 50\n')
    code = main(["run", "--config", str(tmp_path / "advaudit.toml"), "--out", str(tmp_path / "out")])
    assert code in (0, 1, 4), capsys.readouterr().err
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    assert r["threat_model"]["declared"] and r["threat_model"]["eps"] == 0.0313725
    assert r["policy"]["thresholds"]["robustness"].startswith("worst_case_robust_accuracy@0.0313725")
    assert "declared threat model" in r["residual_risk"][0]
