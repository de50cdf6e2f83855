"""The adversarial-example gallery: the grid keeps its own adversarial inputs (audit/methods/gallery.py), the
robustness check turns them into a gallery per variant at the gated eps (images: original, adversarial,
perturbation amplified; tabular data: the features the attacks moved most), and the report shows it escaped."""
from __future__ import annotations

import base64
import io
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from attacks.base import Norm
from audit.checks.robustness import GALLERY, Robustness, gallery
from audit.config.attacks import AttackConfig
from audit.core.metrics import WORST_CASE
from audit.data.splits import Splits
from audit.methods import gallery as gal
from audit.methods.evaluation import GridRun, evaluate_robustness
from reports.templating import render
from reports.view import pct


def png(b64: str) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))), dtype=np.int16)


def adv(row, label, conf, pred=None):
    return gal.Adversarial(row=row, label=label, pred=(label + 1) % 10 if pred is None else pred, confidence=conf,
                           attack="pgd", norm=0.1)


def test_choose_takes_the_most_confident_mistakes_a_few_per_class_then_fills():
    items = [adv(r, 0, 0.99 - r / 100) for r in range(6)] + [adv(10, 1, 0.5), adv(11, 2, 0.4), adv(11, 2, 0.45)]
    picked = gal.choose(items, size=5, per_class=2)
    assert [a.row for a in picked] == [0, 1, 2, 10, 11]     # class 0 capped at 2 while 1 and 2 remain, then filled
    assert [a.confidence for a in picked] == sorted((a.confidence for a in picked), reverse=True)
    assert next(a for a in picked if a.row == 11).confidence == 0.45   # each row once, its most confident break
    assert len(gal.choose(items, size=50, per_class=2)) == 8            # fewer than asked: all of them


def test_shrink_caps_large_images_and_keeps_their_mean():
    x = torch.rand(3, 200, 130)
    s = gal.shrink(x)
    assert max(s.shape[1:]) <= gal.SIDE and s.shape[0] == 3
    assert float(s.mean()) == pytest.approx(float(x.mean()), abs=1e-3)
    small = torch.rand(1, 8, 8)
    assert torch.equal(gal.shrink(small), small)


def linear_model(features: int, classes: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(features, classes)).eval()


def fake_run(data: Splits, model, eps: float, attacks=("fgsm",), shards: int = 1):
    """The attack grid on ``data`` and a stand-in for the run the robustness check sees (what gallery() reads)."""
    settings = AttackConfig(preset="quick", attacks=attacks, eps=(eps / 2, eps), norm=Norm.LINF, batch_size=16)
    assert isinstance(data.x_test, torch.Tensor)
    ev = evaluate_robustness(model, data.x_test, data.y_test,
                             GridRun(settings=settings, clip=data.attack_clip, device=torch.device("cpu"), seed=0,
                                     num_classes=data.num_classes), shards=shards)
    with torch.no_grad():
        logits = model(data.x_test)
    ctx = SimpleNamespace(data=data, config=SimpleNamespace(attacks=settings),
                          clean_correct=lambda v: (logits.argmax(1) == data.y_test).numpy(),
                          get=lambda kind, v: logits)
    return ev, ctx


@pytest.fixture(scope="module")
def image_run():
    """Random 1x12x12 'images', a linear model, labels = its own clean predictions except every fifth row (a clean
    error, never an adversarial example); hostile class names."""
    torch.manual_seed(1)
    x = torch.rand(60, 1, 12, 12)
    model = linear_model(144, 3)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::5] = (y[::5] + 1) % 3
    names = ("<b>zero</b>", "one & \u202eowt", "<two>\u202e")
    data = Splits(name="t", kind="image", x_train=x, y_train=y, x_test=x, y_test=y, num_classes=3, clip=(0.0, 1.0),
                  class_names=names)
    return data, model, *fake_run(data, model, 0.2, attacks=("fgsm", "pgd"))


def test_the_pool_keeps_the_grids_own_adversarial_inputs(image_run):
    data, model, ev, ctx = image_run
    kept = ev.examples[0.2]
    assert kept.examples and len(kept.examples) <= gal.POOL
    clean_ok = ctx.clean_correct("v")
    for a in kept.examples:
        x_adv = data.x_test[a.row] + a.delta          # 12x12: kept at full size, so exactly the attack's input
        with torch.no_grad():
            p = torch.softmax(model(x_adv[None]), 1)[0]
        assert clean_ok[a.row] and a.label == int(data.y_test[a.row]) != a.pred == int(p.argmax())
        assert a.confidence == pytest.approx(float(p.max()), abs=1e-5)
        assert float(a.delta.abs().max()) <= 0.2 + 1e-6 and a.norm == pytest.approx(float(a.delta.abs().max()))
        assert a.attack in ("fgsm", "pgd")


def test_the_kept_examples_do_not_depend_on_the_sharding(image_run):
    data, model, ev, _ctx = image_run
    split, _ = fake_run(data, model, 0.2, attacks=("fgsm", "pgd"), shards=3)
    one, three = ev.examples[0.2].examples, split.examples[0.2].examples
    assert [(a.row, a.attack, a.pred) for a in one] == [(a.row, a.attack, a.pred) for a in three]
    assert all(torch.equal(a.delta, b.delta) for a, b in zip(one, three, strict=True))


def test_the_image_gallery_shows_original_adversarial_and_amplified_perturbation(image_run):
    data, _model, ev, ctx = image_run
    g = gallery(ctx, "v", ev, 0.2)
    broken = ctx.clean_correct("v") & ~ev.correct[(WORST_CASE, 0.2)]
    assert g.broken == int(broken.sum()) > 0 and g.shown == min(GALLERY, g.broken) == len(g.examples)
    assert g.amplification == pytest.approx(1 / (2 * 0.2), rel=1e-3) and g.side == g.source_side == 12
    for e in g.examples:
        assert broken[e.row] and e.true_label != e.predicted_label
        assert e.true_label == data.class_names[data.y_test[e.row]]
        orig, adv_, pert = png(e.original_png), png(e.adversarial_png), png(e.perturbation_png)
        assert orig.shape == adv_.shape == pert.shape == (12, 12)
        assert np.array_equal(orig, np.round(data.x_test[e.row, 0].numpy() * 255))
        assert 0 < np.abs(adv_ - orig).max() <= round(0.2 * 255) + 1    # within eps, and a change
        assert np.abs(pert.astype(float) - 127.5).max() <= 128 and len(np.unique(pert)) > 1
    html = render("gallery.html.j2", autoescape=True, pct=pct,
                  r=SimpleNamespace(findings=[SimpleNamespace(variant="v<i>", details=SimpleNamespace(gallery=g)),
                                              SimpleNamespace(variant="w", details=None)]))
    shown = {e.true_label for e in g.examples} | {e.predicted_label for e in g.examples}
    escaped = {"<b>zero</b>": "&lt;b&gt;zero&lt;/b&gt;", "one & \u202eowt": "one &amp; \ufffdowt",
               "<two>\u202e": "&lt;two&gt;\ufffd"}
    assert len(shown) >= 2 and all(escaped[n] in html for n in shown) and "v&lt;i&gt;" in html
    assert "<b>zero</b>" not in html and "<two>" not in html and "\u202e" not in html
    imgs = re.findall(r"<img ([^>]*)>", html)
    assert len(imgs) == 3 * g.shown and all(re.search(r'alt="[^"]+"', i) and 'src="data:image/png;base64,' in i
                                            for i in imgs)
    assert f"×{g.amplification:.3g}" in html and "<figcaption>" in html


def test_the_tabular_gallery_lists_the_features_the_attack_moved_most_in_both_units():
    """FGSM on a linear model moves every feature by exactly eps (no clipping): the mean |delta| of each feature is
    eps in the model's units and eps x std in the data's; the count is every break of clean-correct points."""
    torch.manual_seed(2)
    x = torch.randn(48, 5)
    model = linear_model(5, 3, seed=3)
    with torch.no_grad():
        y = model(x).argmax(1)
    std = [1.0, 2.0, 0.5, 10.0, 3.0]
    data = Splits(name="t", kind="tabular", x_train=x, y_train=y, x_test=x, y_test=y, num_classes=3,
                  clip=(-50.0, 50.0), class_names=("a", "b", "c"), feature_names=("f0", "f1", "<f2>", "f3", "f4"),
                  preprocessing={"std": std})
    ev, ctx = fake_run(data, model, 0.5)
    g = gallery(ctx, "v", ev, 0.5)
    assert g.examples == () and g.broken == int((~ev.correct[("fgsm", 0.5)]).sum()) == g.moved_breaks > 0
    assert {m.name for m in g.moved} == set(data.feature_names)
    for m in g.moved:
        j = data.feature_names.index(m.name)
        assert m.mean_abs_delta == pytest.approx(0.5, rel=1e-5)
        assert m.mean_abs_delta_data == pytest.approx(0.5 * std[j], rel=1e-5)
    html = render("gallery.html.j2", autoescape=True, pct=pct,
                  r=SimpleNamespace(findings=[SimpleNamespace(variant="v", details=SimpleNamespace(gallery=g))]))
    assert "&lt;f2&gt;" in html and "<f2>" not in html and "<caption>" in html and "100.0%" in html


def test_the_demo_report_has_a_gallery_of_adversarial_examples_per_variant(demo_result, demo_run):
    """The issue's target: at least 8 adversarial examples per variant at the threat eps, with true and predicted
    class and confidences, the prediction wrong, the perturbation inside eps (stored and in the PNGs)."""
    eps, (lo, hi) = demo_result.threat_model.eps, demo_result.dataset.clip
    found = {f.variant: f.details.gallery for f in demo_result.findings if f.check == Robustness.id}
    assert set(found) == {v.name for v in demo_result.variants}
    for name, g in found.items():
        assert g.eps == eps and g.broken >= 8 and g.shown == len(g.examples) >= 8, name
        for e in g.examples:
            assert e.true_label != e.predicted_label and e.true_label in demo_result.dataset.class_names
            assert 1 / demo_result.dataset.num_classes <= e.confidence <= 1 and 0 < e.clean_confidence <= 1
            assert e.perturbation <= eps * (1 + 1e-5)
            orig, adv_ = png(e.original_png), png(e.adversarial_png)
            assert np.abs(adv_ - orig).max() <= np.ceil(eps / (hi - lo) * 255) + 1
    html = (demo_run[1] / "report.html").read_text(encoding="utf-8")
    figures = re.findall(r'<figure class="gallery".*?</div>\s*</figure>', html, re.S)
    assert len(figures) == len(found)
    for fig in figures:
        assert fig.count('<figure class="adv"') >= 8 and fig.count('src="data:image/png;base64,') >= 24


def test_a_non_finite_break_is_never_kept():
    """NaN logits or a non-finite perturbation would reach results.json (written with allow_nan=False)."""
    pool = gal.ExamplePool(np.ones(3, dtype=bool), offset=0)
    logits = torch.tensor([[float("nan"), 0.0], [0.0, 5.0], [0.0, 5.0]])
    delta = torch.zeros(3, 1, 2, 2)
    delta[2, 0, 0, 0] = float("inf")
    pool.add(("pgd", 0.1), torch.arange(3), torch.zeros(3, dtype=torch.long), logits, delta,
             delta.flatten(1).abs().amax(1))
    kept = pool.export()[0.1].examples
    assert [a.row for a in kept] == [1] and np.isfinite(kept[0].confidence)
