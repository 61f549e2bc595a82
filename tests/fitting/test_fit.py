"""vbhc fit: families recover known parameters, the convergence gate, shipped posteriors."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app

#: PyMC fits: about 5 minutes of the suite's CPU time.
pytestmark = pytest.mark.slow

FITS = SCENARIOS / "fits"
QUICK = "sampling: {draws: 1200, tune: 600, chains: 2, seed: 11}\n"


def write_fit(tmp_path, body: str, name: str = "f"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nsource: simulated test data\n{body}")
    return path


def fit(path):
    """Fit in memory; the posterior goes beside the fit file, as a shipped one does."""
    import pymc  # noqa: F401 - its import sets its logger's level

    from vbhc_model.fitting.run import fit as run_fit
    from vbhc_model.report.write import write

    level = logging.getLogger("pymc").level
    result = run_fit(path, figures=False, cores=1)
    write(result, path.with_suffix(".nc"), force=True)
    assert logging.getLogger("pymc").level == level  # quiet while sampling only
    return result


def covers(result, variable: str, truth: float) -> bool:
    draws = result.idata["posterior"][variable].values.ravel()
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return lo <= truth <= hi


@pytest.mark.parametrize("effect", ["rr", "or"])
def test_binomial_arms_recovers_effects(tmp_path, effect):
    rng = np.random.default_rng(5)
    p0, eff = 0.25, {"a": 1.5, "b": 0.8}
    n = 800
    ps = {"ref": p0}
    for arm, e in eff.items():
        ps[arm] = p0 * e if effect == "rr" else 1 / (1 + (1 - p0) / (p0 * e))
    rows = "".join(f"  - {{arm: {a}, events: {rng.binomial(n, p)}, n: {n}}}\n"
                   for a, p in ps.items())
    path = write_fit(tmp_path, f"family: binomial_arms\noptions: {{reference: ref, effect: "
                     f"{effect}}}\ndata:\n{rows}{QUICK}")
    res = fit(path)
    assert not res.failures
    for arm, e in eff.items():
        assert covers(res, f"{effect}_{arm}", e)
    assert covers(res, "p_ref", p0)


def test_rates_recover_rate_ratio(tmp_path):
    rng = np.random.default_rng(8)
    rows = (f"  - {{group: before, events: {rng.poisson(0.8 * 331)}, exposure: 331}}\n"
            f"  - {{group: after, events: {rng.poisson(0.5 * 331)}, exposure: 331}}\n")
    path = write_fit(tmp_path, f"family: rates\noptions: {{reference: before}}\ndata:\n{rows}"
                     + QUICK)
    res = fit(path)
    assert not res.failures
    assert covers(res, "rate_ratio_after", 0.5 / 0.8)
    assert covers(res, "rate_before", 0.8)


def test_engagement_recovers_shares(tmp_path):
    rng = np.random.default_rng(2)
    truth = {"never_started": 0.13, "dropped_out": 0.24, "completed": 0.63}
    counts = rng.multinomial(1367, list(truth.values()))
    rows = "".join(f"  - {{category: {c}, count: {k}}}\n" for c, k in zip(truth, counts))
    res = fit(write_fit(tmp_path, f"family: engagement\ndata:\n{rows}{QUICK}"))
    assert not res.failures
    for c, share in truth.items():
        assert covers(res, f"share_{c}", share)


def test_continuous_recovers_difference_and_effect(tmp_path):
    rng = np.random.default_rng(4)
    m0, m1, sd, n = 5.0, 4.2, 2.0, 300
    rows = (f"  - {{arm: control, mean: {rng.normal(m0, sd / n**0.5):.4f}, sd: {sd}, n: {n}}}\n"
            f"  - {{arm: treated, mean: {rng.normal(m1, sd / n**0.5):.4f}, sd: {sd}, n: {n}}}\n")
    res = fit(write_fit(tmp_path, f"family: continuous\ndata:\n{rows}{QUICK}"))
    assert not res.failures and covers(res, "diff_treated", m1 - m0)
    g_true, n_g = 0.6, 200
    g = rng.normal(g_true, (1 / n_g + g_true**2 / (2 * n_g)) ** 0.5)
    res = fit(write_fit(tmp_path, f"family: continuous\ndata:\n  - {{label: pain, g: {g:.4f}, "
                        f"n: {n_g}}}\n{QUICK}", "g"))
    assert covers(res, "delta_pain", g_true)


def test_weak_fit_fails_the_gate_and_writes_nothing(tmp_path):
    out = tmp_path / "weak.nc"
    res = CliRunner().invoke(app, ["fit", str(FITS / "resolve.yaml"), "--draws", "20",
                                   "--tune", "5", "--chains", "2", "--out", str(out)])
    assert res.exit_code == 3, res.output
    assert "did not converge" in res.output and "R-hat" in res.output
    assert "--allow-unconverged" in res.output
    assert not out.exists()


def test_bad_data_is_a_clear_error(tmp_path):
    path = write_fit(tmp_path, "family: binomial_arms\ndata:\n  - {arm: a, events: 5, n: 10}\n"
                     "  - {arm: b, events: 12, n: 10}\n")
    res = CliRunner().invoke(app, ["fit", str(path)])
    assert res.exit_code == 2
    assert "data[1].events" in res.output and "exceed n" in res.output


@pytest.mark.parametrize("fit_file", sorted(FITS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_posterior_records_its_current_fit_file(fit_file):
    nc = fit_file.with_suffix(".nc")
    assert nc.exists(), f"{nc.name} missing: run 'vbhc fit {fit_file}'"
    tree = xr.open_datatree(nc)
    try:
        assert tree.attrs["fit_file_sha256"] == hashlib.sha256(fit_file.read_bytes()).hexdigest(), \
            f"{nc.name} was fitted from another version of {fit_file.name}: refit it"
        assert int(tree.attrs["converged"]) == 1
    finally:
        tree.close()


def test_resolve_posterior_agrees_with_the_published_relative_risks():
    post = xr.open_dataset(FITS / "resolve.nc", group="posterior")
    for var, (rr, lo, hi) in {"rr_coach": (1.54, 1.30, 1.82),
                              "rr_painTRAINER": (1.28, 1.06, 1.55)}.items():
        q = np.quantile(post[var].values, [0.025, 0.5, 0.975])
        assert abs(q[1] - rr) < 0.03
        assert abs(q[0] - lo) < 0.03 and abs(q[2] - hi) < 0.03
    post.close()


def test_vbhc_run_does_not_import_pymc(tmp_path):
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom vbhc_model.cli import app\n"
            f"r = CliRunner().invoke(app, ['run', '--draws', '50', '--out', r'{tmp_path / 'o'}'])\n"
            "assert r.exit_code == 0, r.output\nprint('pymc' in sys.modules, "
            "'pytensor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


def test_nma_recovers_indirect_effect(tmp_path):
    """A vs B and A vs C trials only: the network still estimates C against B."""
    rng = np.random.default_rng(12)
    log_or = {"A": 0.0, "B": 0.5, "C": 0.9}
    rows = []
    designs = [("A", "B")] * 4 + [("A", "C")] * 4 + [("A", "B", "C")]
    for s, arms in enumerate(designs):
        mu = rng.normal(-1.0, 0.3)
        for t in arms:
            p = 1 / (1 + np.exp(-(mu + log_or[t] + (rng.normal(0, 0.1) if t != "A" else 0))))
            rows.append(f"  - {{study: s{s}, treatment: {t}, events: {rng.binomial(400, p)}, "
                        "n: 400}\n")
    # Heterogeneity (0.1) far below the prior's scale leaves a narrow neck near tau = 0: at
    # target_accept 0.95 one seed in six gave a single divergence (pymc 6.4, session 5), at
    # 0.99 none of six did; the gate refuses any divergence.
    path = write_fit(tmp_path, "family: nma_binomial\noptions: {reference: A}\ndata:\n"
                     + "".join(rows)
                     + "sampling: {draws: 1000, tune: 1000, chains: 2, seed: 3, "
                       "target_accept: 0.99}\n")
    res = fit(path)
    assert not res.failures, res.failures
    assert covers(res, "or_B", np.exp(0.5)) and covers(res, "or_C", np.exp(0.9))
    post = res.idata["posterior"]
    c_vs_b = (post["or_C"] / post["or_B"]).values.ravel()
    lo, hi = np.quantile(c_vs_b, [0.025, 0.975])
    assert lo <= np.exp(0.4) <= hi


def test_nma_refuses_a_disconnected_network(tmp_path):
    path = write_fit(tmp_path, "family: nma_binomial\ndata:\n"
                     "  - {study: s1, treatment: A, events: 5, n: 50}\n"
                     "  - {study: s1, treatment: B, events: 8, n: 50}\n"
                     "  - {study: s2, treatment: C, events: 5, n: 50}\n"
                     "  - {study: s2, treatment: D, events: 9, n: 50}\n")
    res = CliRunner().invoke(app, ["fit", str(path)])
    assert res.exit_code == 2 and "not connected" in res.output


def test_update_changes_the_posterior_and_reports_the_decision(tmp_path):
    """A scenario drawing an operative mortality from a fit; routine data with far higher
    mortality appended: the posterior moves and the comparison says so."""
    fit_path = write_fit(tmp_path, "family: binomial_arms\noptions: {reference: pre}\ndata:\n"
                         "  - {arm: pre, events: 20, n: 1000}\n  - {arm: post, events: 20, n: 1000}\n"
                         + QUICK, "omr")
    fit(fit_path)
    thr = (SCENARIOS / "reference" / "thr_dmhee.yaml").read_text()
    old = next(line for line in thr.splitlines() if line.strip().startswith("omrPTHR:"))
    scenario = tmp_path / "thr_fit.yaml"
    scenario.write_text(thr.replace(old, '  omrPTHR: {value: 0.02, posterior: {file: omr.nc, '
                                         'variable: p_pre}, source: "test fit"}'))
    (tmp_path / "new.csv").write_text("arm,events,n\npre,300,1000\n")
    out = tmp_path / "upd"
    res = CliRunner().invoke(app, ["update", str(fit_path), "--data", str(tmp_path / "new.csv"),
                                   "--scenario", str(scenario), "--draws", "300",
                                   "--out", str(out), "--fit-draws", "450"])
    assert res.exit_code == 0, res.output
    assert "decision before and after" in res.output
    decision = res.output.split("decision before and after")[1]
    assert "Standard (Charnley)" in decision or "NP1" in decision  # labels, not codes
    assert "standard " not in decision and " np1 " not in decision
    assert int(xr.open_datatree(out / "posterior.nc").attrs["draws"]) == 450  # --fit-draws
    weak = CliRunner().invoke(app, ["update", str(fit_path), "--data", str(tmp_path / "new.csv"),
                                    "--scenario", str(scenario), "--out", str(tmp_path / "w"),
                                    "--fit-draws", "10", "--fit-tune", "0"])
    assert weak.exit_code == 3, weak.output
    assert "--fit-draws N --fit-tune N" in weak.output and not (tmp_path / "w").exists()
    before = xr.open_dataset(tmp_path / "omr.nc", group="posterior")["p_pre"].mean()
    after = xr.open_dataset(out / "posterior.nc", group="posterior")["p_pre"].mean()
    assert float(before) == pytest.approx(0.02, abs=0.005)
    assert float(after) == pytest.approx(320 / 2000, abs=0.02)
    import pandas as pd

    comp = pd.read_csv(out / "comparison.csv")
    assert set(comp.columns) >= {"optimal_before", "optimal_after", "p_ce_optimal_before",
                                 "p_ce_optimal_after", "evpi_before", "evpi_after"}
    assert (comp["p_ce_optimal_before"] != comp["p_ce_optimal_after"]).any()
    tree = xr.open_datatree(out / "posterior.nc")
    assert int(tree.attrs["update_rows"]) == 1


def test_custom_model_file_runs_through_the_gate(tmp_path):
    (tmp_path / "my_model.py").write_text(
        "import numpy as np\nimport pymc as pm\n\n\n"
        "def build(data, options):\n"
        "    y = np.array([row['y'] for row in data], dtype=float)\n"
        "    with pm.Model() as model:\n"
        "        mu = pm.Normal('mu', 0, 10)\n"
        "        pm.Normal('y', mu, options['sigma'], observed=y)\n"
        "    return model\n")
    rng = np.random.default_rng(9)
    rows = "".join(f"  - {{y: {v:.4f}}}\n" for v in rng.normal(2.5, 1.0, size=60))
    res = fit(write_fit(tmp_path, f"family: custom\nmodel: my_model.py\noptions: {{sigma: 1.0}}\n"
                        f"data:\n{rows}{QUICK}"))
    assert not res.failures and covers(res, "mu", 2.5)


@pytest.mark.parametrize(("code", "expect"), [
    ("def build(data, options):\n    raise ValueError('my own mistake')\n",
     r"line 2, in build: raise ValueError\('my own mistake'\)"),
    ("x = 1 / 0\n", r"ZeroDivisionError: division by zero\n  .*my_model\.py, line 1, in <module>"),
    ("def build(data, options):\n    return 3\n", r"returned int, not a pm\.Model"),
])
def test_custom_model_errors_are_the_users_not_a_bug(tmp_path, code, expect):
    # issue 11 (F5): the user's exception is theirs: exit 2, their file's lines, no "bug"
    (tmp_path / "my_model.py").write_text(code)
    path = write_fit(tmp_path, "family: custom\nmodel: my_model.py\ndata:\n  - {y: 1}\n" + QUICK)
    result = CliRunner().invoke(app, ["fit", str(path), "--out", str(tmp_path / "o.nc")])
    assert result.exit_code == 2, result.output
    assert "bug" not in result.output and "Traceback" not in result.output
    assert re.search(expect, result.output), result.output
    if "raise" in code or "/ 0" in code:
        assert "error in your model file" in result.output
    assert not (tmp_path / "o.nc").exists()


def test_fit_help_says_the_custom_family_runs_the_given_file():
    result = CliRunner().invoke(app, ["fit", "--help"], terminal_width=200)
    assert "trusted code only" in " ".join(result.output.split())


def test_nma_correlates_the_arms_of_each_multi_arm_study_whatever_the_row_order():
    """Rows of a three-arm study need not be next to each other (s1: rows 0, 1 and 4)."""
    from vbhc_model.fitting.families import deviation_embedding

    rest, e = deviation_embedding({"s1": [0, 1, 4], "s2": [2, 3]}, 5)
    cov = e @ e.T
    assert sorted(rest) == [1, 3, 4]
    assert cov[1, 4] == pytest.approx(0.5)  # the two non-first arms of s1
    assert cov[1, 3] == 0 and cov[3, 4] == 0  # across studies
    assert np.allclose(np.diag(cov)[[1, 3, 4]], 1) and not cov[[0, 2]].any()


def test_a_posterior_that_failed_the_gate_is_refused_by_scenarios(tmp_path):
    from vbhc_model.errors import ScenarioError
    from vbhc_model.scenario.loader import scenario_from_text

    out = tmp_path / "weak.nc"
    res = CliRunner().invoke(app, ["fit", str(FITS / "resolve.yaml"), "--draws", "20",
                                   "--tune", "5", "--chains", "2", "--out", str(out),
                                   "--allow-unconverged"])
    assert res.exit_code == 0 and out.exists(), res.output
    thr = (SCENARIOS / "reference" / "thr_dmhee.yaml").read_text()
    old = next(line for line in thr.splitlines() if line.strip().startswith("omrPTHR:"))
    text = thr.replace(old, f'  omrPTHR: {{value: 0.02, posterior: {{file: {out}, variable: '
                            'p_usual_care}, source: "t"}')
    with pytest.raises(ScenarioError, match="failed the convergence gate"):
        scenario_from_text(text, str(tmp_path / "s.yaml"))


def test_csv_data_errors_point_at_the_csv_line(tmp_path):
    (tmp_path / "d.csv").write_text("\ufeffarm,events,n\na,5,10\nb,,10\n")
    path = tmp_path / "f.yaml"
    path.write_text("name: f\nsource: t\nfamily: binomial_arms\ncsv: d.csv\n")
    res = CliRunner().invoke(app, ["fit", str(path)])
    assert res.exit_code == 2
    assert "d.csv, line 3: events: 'events' is missing" in res.output


def test_looser_gates_and_normal_scale_priors_are_refused(tmp_path):
    for body, expect in [("gate: {max_rhat: 1.5}\n", "gate.max_rhat"),
                         ("priors: {heterogeneity: {type: normal, sigma: 1}}\n", "halfnormal"),
                         ("options: {refrence: A}\n", "no option 'refrence'")]:
        path = write_fit(tmp_path, "family: nma_binomial\ndata:\n"
                         "  - {study: s1, treatment: A, events: 5, n: 50}\n"
                         "  - {study: s1, treatment: B, events: 8, n: 50}\n" + body)
        res = CliRunner().invoke(app, ["fit", str(path)])
        assert res.exit_code == 2 and expect in res.output, (body, res.output)


def test_rates_by_outcome_negative_binomial_and_csv_data_recover(tmp_path):
    """Per-site counts (negative binomial), two outcomes, data from a CSV file."""
    rng = np.random.default_rng(21)
    truth = {("ed", "pre"): 0.33, ("ed", "post"): 0.13, ("xray", "pre"): 0.63,
             ("xray", "post"): 0.44}
    lines = ["outcome,group,events,exposure"]
    for (outcome, group), rate in truth.items():
        for _ in range(8):  # sites, overdispersed
            mu = rate * 150 * rng.gamma(20, 1 / 20)
            lines.append(f"{outcome},{group},{rng.poisson(mu)},150")
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nsource: simulated\nfamily: rates\ncsv: d.csv\n"
                    "options: {reference: pre, likelihood: negbin}\n" + QUICK)
    res = fit(path)
    assert not res.failures, res.failures
    for (outcome, group), rate in truth.items():
        assert covers(res, f"rate_{outcome}_{group}", rate)
    assert covers(res, "rate_ratio_ed_post", 0.13 / 0.33)
    assert "data_csv_sha256" in res.idata.attrs and "constant_data" in res.idata.children


def test_engagement_shares_among_starters_and_between_group_g_recover(tmp_path):
    rng = np.random.default_rng(31)
    counts = rng.multinomial(2000, [0.2, 0.3, 0.5])
    rows = "".join(f"  - {{category: {c}, count: {k}}}\n"
                   for c, k in zip(["never", "dropped", "done"], counts))
    res = fit(write_fit(tmp_path, "family: engagement\noptions: {not_started: never}\n"
                        f"data:\n{rows}{QUICK}"))
    assert not res.failures and covers(res, "share_done_if_started", 0.5 / 0.8)
    g_true, n1, n2 = 0.4, 150, 140
    se = ((n1 + n2) / (n1 * n2) + g_true**2 / (2 * (n1 + n2))) ** 0.5
    g = rng.normal(g_true, se)
    res = fit(write_fit(tmp_path, "family: continuous\ndata:\n"
                        f"  - {{label: pain, g: {g:.4f}, n1: {n1}, n2: {n2}}}\n{QUICK}", "g2"))
    assert not res.failures and covers(res, "delta_pain", g_true)


def snapshot(*folders) -> dict:
    """Every file under ``folders`` (bytecode caches aside) with its size and mtime."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for folder in folders
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_fit_writes_results_in_the_working_directory_and_never_replaces_without_force(
        tmp_path, monkeypatch):
    """The default is results/<name>/ where the command runs (posterior, summary, figures);
    a second run is refused before sampling (exit 2, the path named, nothing changed); --force
    replaces; the package and the shipped scenarios are left as they were."""
    from tests.conftest import ROOT

    package = snapshot(ROOT / "vbhc_model", SCENARIOS)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["fit", str(FITS / "resolve.yaml"), "--draws", "20", "--tune", "5", "--chains", "2",
            "--allow-unconverged"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = work / "results" / "resolve"
    assert sorted(p.name for p in out.iterdir()) == [".vbhc_result", "figures", "posterior.nc",
                                                     "summary.csv"]
    assert (out / "figures" / "trace.png").exists()
    assert "in results/resolve" in res.output
    before = snapshot(out)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "results/resolve: already exists" in res.output and "--force" in res.output
    assert snapshot(out) == before
    res = CliRunner().invoke(app, [*args, "--force", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert snapshot(out) != before and (out / "posterior.nc").exists()
    assert snapshot(ROOT / "vbhc_model", SCENARIOS) == package
    assert not list(work.glob(".*")) and not list((work / "results").glob(".*"))


def test_fit_to_a_named_posterior_file_refuses_to_replace_it_without_force(tmp_path):
    """--out FILE.nc writes the posterior alone (the maintainer's refresh of a shipped one);
    an existing file is replaced only with --force, and the refusal comes before sampling."""
    target = tmp_path / "resolve.nc"
    target.write_bytes(b"an earlier posterior")
    res = CliRunner().invoke(app, ["fit", str(FITS / "resolve.yaml"), "--out", str(target)])
    assert res.exit_code == 2, res.output
    assert f"{target}: already exists" in res.output.replace("\n", "")
    assert target.read_bytes() == b"an earlier posterior"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resolve.nc"]
