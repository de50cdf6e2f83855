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
    c = compare(demo_result, dataclasses.replace(demo_result, candidate="baseline"), CompareRule(max_drop=0.9,
                                                                                                 gate_flips_regress=False))
    assert not c.regression


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
    assert "mean_corruption_accuracy" in render_comparison(c)
