"""advaudit compare: a paired McNemar test on the same test points; flags an injected regression, passes an
identical re-run, refuses different data, and stays PR-comment sized."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.stats import binomtest

from audit.cli import main
from audit.config.policy import CompareRule
from audit.core.metrics import pack_bits
from audit.core.stats import mcnemar_exact
from audit.engine.compare import compare


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (10, 2), (3, 17), (40, 40), (100, 60)])
def test_mcnemar_matches_a_two_sided_binomial_test(b, c):
    expected = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


def write(tmp_path, result, name):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(result.to_dict()), encoding="utf-8")
    return path


def test_an_identical_rerun_passes(demo_result, tmp_path, capsys):
    base, head = write(tmp_path, demo_result, "base"), write(tmp_path, demo_result, "head")
    assert main(["compare", str(base), str(head), "--out", str(tmp_path / "c.md")]) == 0
    text = (tmp_path / "c.md").read_text()
    assert "no significant regression" in text and "**regression**" not in text and len(text) < 65_536


def test_a_head_trained_without_defence_is_a_significant_regression(demo_result, tmp_path, capsys):
    """The injected regression of the issue: the base ships PGD-AT, the head ships the undefended model."""
    assert demo_result.candidate == "pgd_at"
    head = dataclasses.replace(demo_result, candidate="baseline")
    code = main(["compare", str(write(tmp_path, demo_result, "base")), str(write(tmp_path, head, "head"))])
    out = capsys.readouterr().out
    assert code == 1 and ":x: regression" in out
    c = compare(demo_result, head, CompareRule())
    worst = [d for d in c.deltas if d.attack == "worst_case" and d.eps == 0.1][0]
    assert worst.status == "regression" and worst.delta < -0.2 and worst.p_value < 1e-6


def test_a_small_drop_within_max_drop_is_tolerated(demo_result):
    rule = CompareRule(max_drop=0.9, gate_flips_regress=False, allow_changes=("candidate",))
    c = compare(demo_result, dataclasses.replace(demo_result, candidate="baseline"), rule)
    assert not c.regression and [ch.kind for ch in c.changes] == ["candidate"] and c.changes[0].allowed


def _narrowed(demo_result, keep=("input_validation", "clean_accuracy", "robustness"), seed=7):
    """The head of the issue: another seed, and only a few checks (the rest dropped from the run)."""
    findings = tuple(f for f in demo_result.findings if f.check in keep)
    config = {**demo_result.config, "seed": seed}
    return dataclasses.replace(demo_result, findings=findings, config=config)


def test_a_head_with_another_seed_and_dropped_checks_is_a_regression_naming_each(demo_result, tmp_path, capsys):
    head = _narrowed(demo_result)
    code = main(["compare", str(write(tmp_path, demo_result, "base")), str(write(tmp_path, head, "head"))])
    out = capsys.readouterr().out
    assert code == 1 and ":x: regression" in out
    changes = compare(demo_result, head, CompareRule()).changes
    dropped = {ch.what.split()[2] for ch in changes if ch.kind == "checks"}
    measured = {f.check for f in demo_result.findings if f.gating and f.status.value not in ("skipped", "error")}
    gating = measured - {"input_validation", "clean_accuracy", "robustness"}  # a check skipped in base is no loss
    assert dropped == gating and "label_issues" in dropped and "attack_validity" in dropped
    assert any(ch.kind == "seed" and "0 -> 7" in ch.what for ch in changes)
    assert out.index("What changed in the evidence") < out.index("| metric |")  # listed above the McNemar table
    assert "- seed: seed 0 " in out and "label\\_issues" in out  # each change a bullet, Markdown-escaped


def test_allowed_kinds_of_change_do_not_regress_and_the_policy_file_says_which(demo_result, tmp_path, capsys):
    head = _narrowed(demo_result)
    policy = tmp_path / "p.toml"
    policy.write_text('name = "pr"\n[compare]\nallow_changes = ["checks", "seed"]\n', encoding="utf-8")
    code = main(["compare", str(write(tmp_path, demo_result, "base")), str(write(tmp_path, head, "head")),
                 "--policy", str(policy)])
    out = capsys.readouterr().out
    assert code == 0 and "(allowed by the policy)" in out and "**regression**" not in out
    policy.write_text('name = "pr"\n[compare]\nallow_changes = ["sed"]\n', encoding="utf-8")
    code = main(["compare", str(write(tmp_path, demo_result, "base")), str(write(tmp_path, head, "head")),
                 "--policy", str(policy)])
    err = capsys.readouterr().err
    assert code == 2 and "allow_changes" in err and "'sed'" in err and "seed" in err


def test_a_newly_skipped_gating_check_and_other_attack_settings_are_named(demo_result):
    from audit.core.result import Status
    findings = tuple(dataclasses.replace(f, status=Status.SKIPPED) if f.check == "backdoor" else f
                     for f in demo_result.findings)
    attacks = {**demo_result.config["attacks"], "pgd_steps": 3, "batch_size": 7}
    head = dataclasses.replace(demo_result, findings=findings, config={**demo_result.config, "attacks": attacks})
    whats = [ch.what for ch in compare(demo_result, head, CompareRule()).changes]
    assert "gating check backdoor is now skipped" in whats and "attacks.pgd_steps: 10 -> 3" in whats
    assert not any("batch_size" in w for w in whats)  # a speed setting changes no result


def test_different_test_data_is_refused(demo_result, tmp_path, capsys):
    from audit.core.result import SplitHashes
    other = dataclasses.replace(demo_result, dataset=dataclasses.replace(
        demo_result.dataset, sha256=SplitHashes(train="0" * 64, test="1" * 64)))
    code = main(["compare", str(write(tmp_path, demo_result, "a")), str(write(tmp_path, other, "b"))])
    assert code == 2 and "different data" in capsys.readouterr().err


def test_random_flips_of_a_few_points_are_not_significant(demo_result):
    v = demo_result.variant(demo_result.candidate)
    n = demo_result.dataset.n_test
    from audit.core.metrics import unpack_bits
    bits = unpack_bits(v.correct_bits, n).copy()
    rng = np.random.default_rng(0)
    flip = rng.choice(np.flatnonzero(bits), 2, replace=False)
    bits[flip] = False
    head = dataclasses.replace(demo_result, variants=tuple(
        dataclasses.replace(x, correct_bits=pack_bits(bits)) if x.name == v.name else x for x in demo_result.variants))
    d = compare(demo_result, head, CompareRule()).deltas[0]
    assert d.metric == "clean_accuracy" and d.base_only == 2 and d.status == "no significant change"


def test_the_ci_example_uses_only_commands_the_cli_accepts():
    import re
    import shlex
    from pathlib import Path

    from audit.cli import build_parser
    workflow = (Path(__file__).resolve().parents[3] / "examples" / "ci" / "advaudit-pr.yml").read_text()
    commands = []
    for line in workflow.splitlines():
        if line.strip().startswith("#"):
            continue
        for part in re.split(r"&&|\|\|", line):
            part = part.strip().removeprefix("run:").strip()
            if part.startswith("advaudit "):
                commands.append(part)
    assert {c.split()[1] for c in commands} >= {"run", "verify", "compare"}
    for command in commands:
        args = shlex.split(command.replace("$CONFIG", "advaudit.toml"))[1:]
        build_parser().parse_args(args)  # raises UsageError on anything the CLI does not know


def test_compare_lists_calibration_corruption_and_ood_changes(demo_result):
    head = dataclasses.replace(demo_result, candidate="baseline")
    c = compare(demo_result, head, CompareRule())
    got = {(o["check"], o["metric"]) for o in c.other}
    assert {("calibration", "ece"), ("corruptions", "mce"), ("ood", "auroc_msp_min")} <= got
    from reports.compare_md import render_comparison
    assert "mean\\_corruption\\_accuracy" in render_comparison(c)  # Markdown-escaped


def _bits_result(demo_result, correct, name="clean"):
    """demo_result re-scored on a synthetic test split of len(correct) points (clean bits only)."""
    variants = tuple(dataclasses.replace(v, correct_bits=pack_bits(correct) if v.candidate else "",
                                         robustness=tuple(dataclasses.replace(p, correct_bits="")
                                                          for p in v.robustness))
                     for v in demo_result.variants)
    return dataclasses.replace(demo_result, variants=variants,
                               dataset=dataclasses.replace(demo_result.dataset, n_test=len(correct)))


def test_wrong_answers_mcnemar_on_20000_points_with_5000_discordant_pairs(demo_result, tmp_path, capsys):
    """The exact test used to overflow at 1,024 discordant pairs; now 5,000 give scipy's p-value and exit 1."""
    rng = np.random.default_rng(0)
    base = np.zeros(20_000, dtype=bool)
    base[:15_000] = True
    head = base.copy()
    lost = rng.choice(15_000, 4_000, replace=False)          # b: correct in base only
    gained = 15_000 + rng.choice(5_000, 1_000, replace=False)  # c: correct in head only
    head[lost], head[gained] = False, True
    b_res, h_res = _bits_result(demo_result, base), _bits_result(demo_result, head)
    c = compare(b_res, h_res, CompareRule())
    d = next(d for d in c.deltas if d.metric == "clean_accuracy")
    assert (d.base_only, d.head_only) == (4_000, 1_000)
    assert d.p_value == pytest.approx(binomtest(1_000, 5_000, 0.5).pvalue, rel=1e-9, abs=1e-300)
    assert d.status == "regression" and c.exit_code == 1
    code = main(["compare", str(write(tmp_path, b_res, "b")), str(write(tmp_path, h_res, "h"))])
    assert code == 1, capsys.readouterr().err


def _mutated(demo_result, tmp_path, edit):
    data = json.loads(json.dumps(demo_result.to_dict()))
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit,fragment", [
    (lambda d: d.update(schema_version="3.0"), "schema_version '3.0'"),
    (lambda d: d.update(schema_version="1.0"), "schema_version '1.0'"),
    (lambda d: d.pop("findings"), "findings"),
    (lambda d: d["dataset"].pop("n_test"), "n_test"),
    (lambda d: d.update(candidate="nobody"), "candidate"),
    (lambda d: d["variants"][0].update(correct_bits="%%%not-base64%%%"), "correct_bits"),
    (lambda d: d["variants"][0].update(correct_bits="AA=="), "correct_bits"),
    (lambda d: d["findings"][0].update(status="maybe"), "findings/0/status"),
    (lambda d: d["findings"][3]["details"].update(points="x"), "findings/3/details"),
])
def test_compare_and_render_refuse_a_malformed_result_naming_the_field(demo_result, tmp_path, capsys, edit,
                                                                      fragment):
    bad = _mutated(demo_result, tmp_path, edit)
    good = write(tmp_path, demo_result, "good")
    assert main(["compare", str(good), str(bad)]) == 2
    assert main(["render", str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count(fragment) == 2 and "Traceback" not in err and err.count("\n") == 2
    assert not (tmp_path / "r").exists()
