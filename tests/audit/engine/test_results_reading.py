"""The one results.json reader (render, compare, the API) refuses crafted input with a one-line usage error (exit 2)
naming the field or the limit, never an internal error (exit 3) and never accepting it: non-finite numbers,
values out of range, deep nesting, oversized files, unknown major versions; any minor version of the known major
is read; compare refuses too few or different test points."""
from __future__ import annotations

import copy
import json

import pytest

from audit.cli import main
from audit.core.errors import UsageError
from audit.core.metrics import pack_bits, unpack_bits
from audit.engine import compare as compare_mod
from audit.engine import results_io
from audit.engine.results_io import MAX_BYTES, MAX_DEPTH, parse_results, read_results

MARK = 0.123456789012345   # a value written into the JSON text, then replaced by crafted number text


@pytest.fixture
def good(demo_run):
    return copy.deepcopy(demo_run[2])


def dump(tmp_path, data, name="results.json", replace: str | None = None) -> str:
    text = json.dumps(data, indent=1)
    if replace is not None:
        assert text.count(repr(MARK)) == 1
        text = text.replace(repr(MARK), replace)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def refused(capsys, argv, out=None) -> str:
    """Run the CLI: exit 2 with one line on stderr (returned), no output directory written."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("advaudit: error: ") and "\n" not in err and "internal error" not in err
    if out is not None:
        assert not out.exists()
    return err


def render_refused(capsys, tmp_path, path) -> str:
    return refused(capsys, ["render", str(path), "--out", str(tmp_path / "o")], tmp_path / "o")


def compare_refused(capsys, tmp_path, path, good) -> str:
    base = dump(tmp_path, good, "base.json")
    return refused(capsys, ["compare", base, str(path)])


def setdeep(data, at, value):
    for k in at[:-1]:
        data = data[k]
    data[at[-1]] = value


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_refused_naming_the_field(good, tmp_path, capsys, text):
    setdeep(good, ["variants", 0, "robustness", 0, "robust_accuracy"], MARK)
    path = dump(tmp_path, good, replace=text)
    for err in (render_refused(capsys, tmp_path, path), compare_refused(capsys, tmp_path, path, good)):
        assert "variants/0/robustness/0/robust_accuracy" in err and "not a finite number" in err
    with pytest.raises(UsageError, match="robust_accuracy"):
        read_results(path)


def test_non_finite_in_free_form_data_and_from_python_is_refused(good, tmp_path, capsys):
    setdeep(good, ["config", "seed"], MARK)
    assert "field config/seed" in render_refused(capsys, tmp_path, dump(tmp_path, good, replace="NaN"))
    setdeep(good, ["config", "seed"], float("nan"))
    with pytest.raises(UsageError, match="config/seed: nan is not a finite number"):
        parse_results(good)


OUT_OF_RANGE = [
    (["variants", 0, "robustness", 0, "robust_accuracy"], 1.5),
    (["variants", 0, "robustness", 0, "ci_low"], -0.01),
    (["variants", 0, "robustness", 0, "ci_high"], 1.0001),
    (["variants", 0, "robustness", 0, "n"], -1),
    (["variants", 0, "robustness", 0, "example_passes"], -3),
    (["variants", 0, "clean_accuracy", "value"], 2.0),
    (["variants", 0, "clean_accuracy", "correct"], 10**6),
    (["variants", 0, "ece"], 1.2),
    (["dataset", "n_test"], -5),
    (["dataset", "n_train"], -1),
]


@pytest.mark.parametrize("at,value", OUT_OF_RANGE, ids=lambda x: "/".join(map(str, x)) if isinstance(x, list)
                         else repr(x))
def test_values_out_of_range_are_refused_naming_the_field(good, tmp_path, capsys, at, value):
    setdeep(good, at, value)
    path = dump(tmp_path, good)
    field = "/".join(map(str, at))
    for err in (render_refused(capsys, tmp_path, path), compare_refused(capsys, tmp_path, path, good)):
        assert f"field {field}" in err


def test_out_of_range_metrics_and_details_are_refused(good, tmp_path, capsys):
    i = next(i for i, f in enumerate(good["findings"]) if "ece" in f["metrics"])
    setdeep(good, ["findings", i, "metrics", "ece"], 3.0)
    assert f"field findings/{i}/metrics/ece" in render_refused(capsys, tmp_path, dump(tmp_path, good))
    bad = copy.deepcopy(good)
    setdeep(bad, ["findings", i, "metrics", "ece"], 0.1)
    j, key = next((j, k) for j, f in enumerate(bad["findings"]) if isinstance(f["details"], dict)
                  for k in ("non_iid_p_value", "majority_share") if isinstance(f["details"].get(k), float))
    setdeep(bad, ["findings", j, "details", key], -0.5)
    assert f"field findings/{j}/details/{key}" in render_refused(capsys, tmp_path, dump(tmp_path, bad))


@pytest.mark.parametrize("where", ["top", "inside"])
def test_deep_nesting_is_refused_before_parsing(good, tmp_path, capsys, where):
    deep = "[" * 200_000 + "]" * 200_000
    text = deep if where == "top" else json.dumps(good).replace('"config": {', f'"config": {{"x": {deep}, ', 1)
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    for err in (render_refused(capsys, tmp_path, path), compare_refused(capsys, tmp_path, path, good)):
        assert f"nested deeper than {MAX_DEPTH}" in err


def test_brackets_inside_strings_do_not_count_as_nesting(good, tmp_path, capsys):
    good["variants"][0]["description"] = '[{"\\' * 1000 + '"' + "[" * 100
    assert main(["render", dump(tmp_path, good), "--out", str(tmp_path / "o")]) in (0, 1)


def test_deep_nesting_from_python_is_refused_not_a_recursion_error(good):
    deep: list = []
    for _ in range(20_000):
        deep = [deep]
    good["config"]["x"] = deep
    with pytest.raises(UsageError, match=f"nested deeper than {MAX_DEPTH}"):
        parse_results(good)


def test_an_oversized_file_is_refused_before_reading(tmp_path, capsys):
    path = tmp_path / "results.json"
    with open(path, "wb") as fh:   # sparse: no disk is used, and it is never read
        fh.truncate(MAX_BYTES + 1)
    assert "over the 256 MiB limit" in render_refused(capsys, tmp_path, path)


@pytest.mark.parametrize("text,expect", [
    (b"\xff\xfe{}", "not UTF-8"), (b'{"schema_version": "2.0"', "line 1"), (b"[1, 2]", "top level is not an object"),
    (b'{"n": 1' + b"1" * 5000 + b"}", "cannot read results file"), (b"", "cannot read results file")])
def test_broken_files_are_usage_errors(tmp_path, capsys, text, expect):
    path = tmp_path / "results.json"
    path.write_bytes(text)
    assert expect in render_refused(capsys, tmp_path, path)


def test_any_minor_version_of_the_known_major_is_read(good, demo_run, tmp_path, capsys):
    good["schema_version"] = "2.99"
    assert main(["render", dump(tmp_path, good), "--out", str(tmp_path / "o")]) == demo_run[0]
    assert (tmp_path / "o" / "report.html").is_file()


@pytest.mark.parametrize("version", ["3.0", "1.9", "x", 2, "2.x", "2.0.1", None])
def test_other_versions_are_refused_naming_schema_version(good, tmp_path, capsys, version):
    good["schema_version"] = version
    assert "schema_version" in render_refused(capsys, tmp_path, dump(tmp_path, good))


def test_a_validator_crash_is_a_usage_error(good, tmp_path, capsys, monkeypatch):
    class Crashing:
        def iter_errors(self, data):
            raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(results_io, "_validator", lambda: Crashing())
    assert "cannot be checked against the results schema" in render_refused(capsys, tmp_path, dump(tmp_path, good))


def truncated(data, n):
    """The same result claiming only the first ``n`` test points (bits cut to match)."""
    data = copy.deepcopy(data)
    full = data["dataset"]["n_test"]
    data["dataset"]["n_test"] = n
    for v in data["variants"]:
        for holder in [v] + v["robustness"]:
            if holder.get("correct_bits"):
                holder["correct_bits"] = pack_bits(unpack_bits(holder["correct_bits"], full)[:n])
    return data


def test_compare_refuses_a_head_with_fewer_test_points_naming_the_counts(good, tmp_path, capsys):
    n = good["dataset"]["n_test"]
    err = compare_refused(capsys, tmp_path, dump(tmp_path, truncated(good, 5), "head.json"), good)
    assert "different test sets" in err and f"base has {n} test points, head has 5" in err


def test_compare_refuses_too_few_test_points_for_a_paired_test(good, tmp_path, capsys):
    small = truncated(good, 5)
    base, head = dump(tmp_path, small, "base.json"), dump(tmp_path, small, "head.json")
    err = refused(capsys, ["compare", base, head])
    assert "too few test points for a paired test: 5" in err and str(compare_mod.MIN_PAIRED_POINTS) in err
    enough = truncated(good, compare_mod.MIN_PAIRED_POINTS)
    base, head = dump(tmp_path, enough, "base.json"), dump(tmp_path, enough, "head.json")
    assert main(["compare", base, head]) == 0


def test_compare_reads_directories_through_the_same_reader(good, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dump(tmp_path / "a", good)
    setdeep(good, ["variants", 0, "ece"], MARK)
    dump(tmp_path / "b", good, replace="NaN")
    err = refused(capsys, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert "variants/0/ece" in err and str(tmp_path / "b" / "results.json") in err
    assert compare_mod.read_results is results_io.read_results
    with pytest.raises(UsageError, match="variants/0/ece"):
        compare_mod.load_result(tmp_path / "b")
    with pytest.raises(UsageError, match="directory without results.json"):
        compare_mod.load_result(tmp_path)


def test_the_demo_result_still_reads_from_its_directory(demo_run):
    result = read_results(demo_run[1])
    assert result.to_dict() == parse_results(demo_run[2]).to_dict()
