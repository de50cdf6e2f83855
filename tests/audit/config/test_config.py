import pytest

from audit.config import AuditConfig, load_config
from audit.config.policy import load_policy
from audit.core.errors import UsageError
from audit.core.serde import from_data
from audit.engine import configure


def load(tmp_path, text):
    """Through the engine's loader: the config room's checks plus the registries' names."""
    p = tmp_path / "advaudit.toml"
    p.write_text(text)
    return configure.load(p)


def test_valid_config_loads_with_coercions(tmp_path):
    cfg = load(tmp_path, 'candidate = "at"\n[attacks]\nnorm = "l2"\neps = [0.5, 1.0]\n'
                         '[[defences]]\nname = "at"\nmethod = "fgsm_rs"\neps = 0.5\n')
    assert cfg.attacks.norm.value == "l2" and cfg.attacks.eps == (0.5, 1.0)
    assert cfg.variant_names == ("baseline", "at")


@pytest.mark.parametrize("text,fragment", [
    ('[attacks]\nepss = [0.1]\n', "attacks.epss: unknown key; valid keys: apgd_restarts"),
    ('seeed = 1\n', "seeed: unknown key"),
    ('[attacks]\nnorm = "l3"\n', "'l3' is not valid; valid values: 'linf', 'l2'"),
    ('[attacks]\neps = [0.2, 0.1]\n', "increasing order"),
    ('[attacks]\nattacks = ["cw"]\n', "'cw' is not a known attack"),
    ('[training]\nepochs = "ten"\n', "training.epochs: expected an integer"),
    ('candidate = "nope"\n', "candidate: 'nope' is not a variant; valid: baseline"),
    ('[[defences]]\nname = "x"\nmethod = "madry"\n', "defences[0].method: 'madry' is not valid"),
    ('checks = ["bogus"]\n', "checks: 'bogus' is not a known check"),
    ('[data]\nsource = "mnist"\n', "data.source: 'mnist' is not a known source"),
    ('not toml = = 1\n', "is not valid TOML"),
])
def test_bad_config_names_the_key_and_the_valid_values(tmp_path, text, fragment):
    with pytest.raises(UsageError) as e:
        load(tmp_path, text)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_config_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_default_policy_is_hashed_and_thresholds_are_validated(tmp_path):
    p = load_policy("default")
    assert len(p.sha256) == 64 and "robustness" in p.thresholds
    bad = tmp_path / "policy.toml"
    bad.write_text('name = "x"\n[thresholds.robustness]\nmetric = "m"\nmin = 0.5\nmax = 0.9\n')
    with pytest.raises(UsageError, match="either min/warn_min or max/warn_max"):
        load_policy(str(bad))
    bad.write_text('name = "x"\n[thresholds.robustness]\nmetrc = "m"\n')
    with pytest.raises(UsageError, match="policy.thresholds.robustness.metrc: unknown key"):
        load_policy(str(bad))


def test_policy_hash_changes_with_any_byte(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('name = "x"\n[thresholds.clean_accuracy]\nmetric = "clean_accuracy"\nmin = 0.9\n')
    h1 = load_policy(str(p)).sha256
    p.write_text('name = "x"\n[thresholds.clean_accuracy]\nmetric = "clean_accuracy"\nmin = 0.91\n')
    assert load_policy(str(p)).sha256 != h1


def test_serde_rejects_a_table_where_a_list_is_expected():
    with pytest.raises(UsageError, match="defences: expected a list"):
        from_data(AuditConfig, {"defences": {"name": "x"}})


def test_the_old_gates_table_is_read_as_thresholds(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('name = "x"\n[gates.clean_accuracy]\nmetric = "clean_accuracy"\nmin = 0.9\n')
    assert load_policy(str(p)).thresholds["clean_accuracy"].min == 0.9
    p.write_text('name = "x"\n[gates.a]\nmetric = "m"\nmin = 0.9\n[thresholds.b]\nmetric = "m"\nmin = 0.9\n')
    with pytest.raises(UsageError, match="old name"):
        load_policy(str(p))


def test_a_non_default_compare_table_is_loaded_as_written(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('name = "x"\n[compare]\nalpha = 0.01\nmax_drop = 0.02\ngate_flips_regress = false\n')
    rule = load_policy(str(p)).compare
    assert (rule.alpha, rule.max_drop, rule.gate_flips_regress) == (0.01, 0.02, False)


def test_config_relative_paths_are_absolute_once_loaded_and_checked(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.safetensors").write_bytes(b"x")
    cfg = load(tmp_path, '[model]\nweights = "sub/w.safetensors"\n')
    assert cfg.model.weights == str((tmp_path / "sub" / "w.safetensors").resolve())
    assert cfg.base_dir == str(tmp_path.resolve())
    for key, text in (("model.weights", '[model]\nweights = "nope.pt"\n'),
                      ("label_issues.pred_probs", '[label_issues]\npred_probs = "p.npy"\n'),
                      ("data.ood_path", '[data]\nood_path = "o.npz"\n'), ("policy", 'policy = "p.toml"\n'),
                      ("output.sign_key", '[output]\nsign_key = "k.pem"\n'),
                      ("defences.d.weights", '[[defences]]\nname = "d"\nweights = "d.pt"\n')):
        with pytest.raises(UsageError, match=f"{key}: file not found"):
            load(tmp_path, text)
    with pytest.raises(UsageError, match="base_dir: set by advaudit"):
        load(tmp_path, 'base_dir = "/"\n')
