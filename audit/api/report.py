"""The result object of the Python API: the typed :class:`AuditResult` with the views a notebook wants."""
from __future__ import annotations

from pathlib import Path

from audit.core.result import AuditResult


class Audit:
    """``verdict`` ("GO" / "NO-GO" / "ERROR" / "INCOMPLETE"), ``evidence_gaps`` (what an INCOMPLETE run lacks of
    its policy's evidence), ``candidate``, ``result`` (the typed AuditResult), tables as pandas DataFrames,
    ``to_html()`` (the full report) and ``_repr_html_`` (the report's first screen, for notebooks: verdict colour,
    reason, threat model, the robustness curve, links to the report files once ``out_dir`` holds them)."""

    def __init__(self, result: AuditResult, out_dir: str | Path | None = None):
        self.result = result
        self.mlflow_run_id: str | None = None
        self.out_dir: Path | None = Path(out_dir) if out_dir is not None else None  # where write() wrote it

    @property
    def verdict(self) -> str:
        return self.result.verdict.label

    @property
    def passed(self) -> bool:
        """GO: every gating finding passed on the evidence the policy asks for (never an INCOMPLETE run)."""
        return self.verdict == "GO"

    @property
    def evidence_gaps(self) -> tuple[str, ...]:
        return self.result.evidence_gaps

    @property
    def candidate(self) -> str:
        return self.result.candidate

    def findings_table(self):
        import pandas as pd
        return pd.DataFrame([{"id": f.id, "check": f.check, "variant": f.variant, "status": f.status.value,
                              "gating": f.gating, "summary": f.summary} for f in self.result.findings])

    def robustness_table(self):
        """One row per variant, attack and eps: robust accuracy with its 95% interval and the passes spent."""
        import pandas as pd
        return pd.DataFrame([{"variant": v.name, "attack": p.attack, "norm": p.norm, "eps": p.eps,
                              "robust_accuracy": p.robust_accuracy, "ci_low": p.ci_low, "ci_high": p.ci_high,
                              "n": p.n, "example_passes": p.example_passes}
                             for v in self.result.variants for p in v.robustness])

    def variants_table(self):
        import pandas as pd
        return pd.DataFrame([dict(variant=v.name, candidate=v.candidate, best=v.best,
                                  clean_accuracy=v.clean_accuracy.value if v.clean_accuracy else None,
                                  ece=v.ece, description=v.description) for v in self.result.variants])

    def metrics(self) -> dict[str, float]:
        """Every finding's metrics as "check[:variant].metric" -> value."""
        return {f"{f.id}.{k}": float(v) for f in self.result.findings for k, v in f.metrics.items()}

    def to_dict(self) -> dict:
        return self.result.to_dict()

    def to_html(self) -> str:
        from reports import render_html  # FORMATS["html"]'s renderer
        return render_html(self.result)

    def _repr_html_(self) -> str:
        from reports.html import render_notebook  # self-contained: inline CSS and SVG, every value escaped
        return render_notebook(self.result, self.out_dir)

    def write(self, out: str | Path, formats: tuple[str, ...] = ("html", "json", "md", "csv"), _ctx=None,
              sign_key: str | Path = "", sign: str | Path = "") -> Path:
        """The output directory, as ``advaudit run --out`` writes it (with the evidence bundle when the run's
        context is at hand). ``sign`` (``sign_key`` is its older name) names an Ed25519 private key: the directory
        is then signed as it is written (attestation.dsse.json; the sign-off names the config's [reviewer])."""
        import os

        from audit.api.outputs import check_output, write
        from audit.core.errors import UsageError
        if not isinstance(out, (str, os.PathLike)):
            raise UsageError(f"out: give the output directory as a str or a pathlib.Path, not {type(out).__name__}")
        for name, value in (("sign", sign), ("sign_key", sign_key)):
            if not isinstance(value, (str, os.PathLike)):
                raise UsageError(f"{name}: give the key's path as a str or a pathlib.Path, not {type(value).__name__}")
        if sign and sign_key and Path(sign) != Path(sign_key):
            raise UsageError("give the signing key once: sign= (sign_key= is its older name)")
        out = Path(out)
        key = check_output(out, tuple(formats), str(sign or sign_key or ""))
        write(self.result, out, tuple(formats), bundle=_ctx, sign_key=key)
        self.out_dir = out
        return out

    def __repr__(self) -> str:
        return f"<advaudit {self.verdict} for {self.candidate!r}: {len(self.result.findings)} findings>"
