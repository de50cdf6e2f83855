import pytest

from audit.config import AuditConfig, load_config
from audit.errors import UsageError
from audit.policy import load_policy
from audit.serde import from_data


def load(tmp_path, text):
    p = tmp_path / "advaudit.toml"
    p.write_text(text)
    return load_config(p)


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


def test_default_policy_is_hashed_and_gates_are_validated(tmp_path):
    p = load_policy("default")
    assert len(p.sha256) == 64 and "robustness" in p.gates
    bad = tmp_path / "policy.toml"
    bad.write_text('name = "x"\n[gates.robustness]\nmetric = "m"\nmin = 0.5\nmax = 0.9\n')
    with pytest.raises(UsageError, match="either min/warn_min or max/warn_max"):
        load_policy(str(bad))
    bad.write_text('name = "x"\n[gates.robustness]\nmetrc = "m"\n')
    with pytest.raises(UsageError, match="policy.gates.robustness.metrc: unknown key"):
        load_policy(str(bad))


def test_policy_hash_changes_with_any_byte(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('name = "x"\n[gates.clean_accuracy]\nmetric = "clean_accuracy"\nmin = 0.9\n')
    h1 = load_policy(str(p)).sha256
    p.write_text('name = "x"\n[gates.clean_accuracy]\nmetric = "clean_accuracy"\nmin = 0.91\n')
    assert load_policy(str(p)).sha256 != h1


def test_serde_rejects_a_table_where_a_list_is_expected():
    with pytest.raises(UsageError, match="defences: expected a list"):
        from_data(AuditConfig, {"defences": {"name": "x"}})
