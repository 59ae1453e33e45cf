"""Benchmark: training and scoring response and uplift models at 1,000,000 customers, against bare scikit-learn.

    .venv/bin/python bench/training_bench.py
    .venv/bin/python bench/training_bench.py --rows 200000      # a quick run

The data: ``--rows`` customers of past waves with 8 features (age with 3 % missing, income,
balance, tenure in months, segment with 2 % missing, region of 12, preferred channel, a yes/no
membership), 80 % treated and 20 % control, a response that follows income, balance and
membership for everyone and an effect of the contact that depends on age and segment.

Each step is timed against the same work done with bare scikit-learn on the same data (the
ratio's denominator): a ``ColumnTransformer`` (median imputation and scaling; constant
imputation and one-hot encoding, infrequent categories pooled) and ``LogisticRegression`` built
by hand, on the columns already in the types the pipeline wants.

- ``train_uplift_model`` (two-model, logistic: fit both groups on a stratified 75 %, score the
  25 %, Qini/AUUC/deciles, refit both on every row) against the two pipelines' fits and
  ``predict_proba`` on the same split, then the refits;
- ``train_response_model`` (fit on a stratified 75 %, score the 25 %, metrics, refit) against one
  pipeline's fit, ``predict_proba`` and refit;
- scoring ``--rows`` customers with ``score_frame`` (uplift, then response) against
  ``predict_proba`` (twice, once) of the bare pipelines.

Seconds and ratios are printed and written to ``bench/out/training_bench.json`` with the peak
resident memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stages import peak_mib  # noqa: E402

NUMERIC = ["age", "income", "balance", "tenure_months"]
CATEGORICAL = ["segment", "region", "channel_preference", "member"]


def make_customers(n: int, seed: int = 2026):
    """Customers with treatment and outcome (see the module docstring)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 85, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan
    segment = rng.choice(np.array(["gold", "silver", "bronze", "tin"], dtype=object), n, p=[0.15, 0.3, 0.4, 0.15])
    segment[rng.random(n) < 0.02] = None
    income = rng.lognormal(10.5, 0.5, n)
    balance = rng.normal(2_000, 1_500, n)
    member = rng.random(n) < 0.4
    treated = (rng.random(n) < 0.8).astype(np.int8)
    logit = -2.2 + 0.8 * (np.log(income) - 10.5) + 0.0002 * balance + 0.5 * member
    base = 1 / (1 + np.exp(-logit))
    young_gold = (np.nan_to_num(age, nan=99) < 40) & (segment == "gold")
    old_tin = (np.nan_to_num(age) >= 65) & (segment == "tin")
    effect = 0.02 + np.where(young_gold, 0.15, 0.0) - np.where(old_tin, 0.04, 0.0)
    responded = rng.random(n) < np.clip(base + treated * effect, 0, 1)
    return pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.arange(n).astype(str)).astype(object),
            "age": age,
            "income": income,
            "balance": balance,
            "tenure_months": rng.integers(0, 240, n),
            "segment": segment,
            "region": rng.choice(np.array([f"r{i:02d}" for i in range(12)], dtype=object), n),
            "channel_preference": rng.choice(np.array(["email", "phone", "visit"], dtype=object), n, p=[0.6, 0.3, 0.1]),
            "member": member,
            "treated": treated,
            "responded": np.where(responded, "yes", "no").astype(object),
        }
    )


def bare_inputs(frame):
    """The feature columns in the types a hand-built pipeline takes (prepared once, outside the timings)."""
    import numpy as np
    import pandas as pd

    prepared = {name: frame[name].to_numpy(dtype=np.float64) for name in NUMERIC}
    for name in CATEGORICAL:
        values = frame[name].astype(str) if frame[name].dtype == bool else frame[name]
        prepared[name] = values.to_numpy(dtype=object)
    return pd.DataFrame(prepared)


def bare_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=0.005, max_categories=50, sparse_output=False
                ),
            ),
        ]
    )
    columns = ColumnTransformer([("number", numbers, NUMERIC), ("category", categories, CATEGORICAL)])
    return Pipeline([("columns", columns), ("classifier", LogisticRegression(max_iter=2000, random_state=0))])


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    import numpy as np
    import sklearn
    from rich.console import Console
    from rich.table import Table
    from sklearn.model_selection import train_test_split

    from orchestrator.scoring.response import train_response_model
    from orchestrator.scoring.uplift import train_uplift_model

    console = Console(width=120)
    frame, seconds = timed(make_customers, args.rows)
    console.print(f"generated {len(frame):,} customers in {seconds:.2f} s")
    X = bare_inputs(frame)
    t = frame["treated"].to_numpy()
    y = (frame["responded"] == "yes").to_numpy().astype(np.int8)

    def bare_uplift_training():
        X_train, X_val, t_train, _t_val, y_train, _y_val = train_test_split(
            X, t, y, test_size=0.25, stratify=t * 2 + y, random_state=0
        )
        for features, treatment, outcome, score in ((X_train, t_train, y_train, X_val), (X, t, y, None)):
            treated = bare_pipeline().fit(features[treatment == 1], outcome[treatment == 1])
            control = bare_pipeline().fit(features[treatment == 0], outcome[treatment == 0])
            if score is not None:
                treated.predict_proba(score)[:, 1] - control.predict_proba(score)[:, 1]
        return treated, control

    def bare_response_training():
        X_train, X_val, y_train, _y_val = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
        bare_pipeline().fit(X_train, y_train).predict_proba(X_val)
        return bare_pipeline().fit(X, y)

    results = {}
    uplift, ours = timed(train_uplift_model, frame, "responded", "treated")
    (bare_treated, bare_control), bare = timed(bare_uplift_training)
    results["train_uplift_model"] = (ours, bare)
    response, ours = timed(train_response_model, frame, "responded", exclude=["treated"])
    bare_response, bare = timed(bare_response_training)
    results["train_response_model"] = (ours, bare)

    uplift_scores, ours = timed(uplift.model.score_frame, frame)
    bare_uplift, bare = timed(lambda: bare_treated.predict_proba(X)[:, 1] - bare_control.predict_proba(X)[:, 1])
    results["score_frame uplift"] = (ours, bare)
    response_scores, ours = timed(response.model.score_frame, frame)
    bare_scores, bare = timed(lambda: bare_response.predict_proba(X)[:, 1])
    results["score_frame response"] = (ours, bare)
    # the same models on the same data give the same scores
    uplift_gap = float(np.abs(uplift_scores - bare_uplift).max())
    response_gap = float(np.abs(response_scores - bare_scores).max())

    table = Table(
        title=f"{len(frame):,} customers, {len(NUMERIC) + len(CATEGORICAL)} features, two-model logistic uplift"
    )
    table.add_column("step")
    table.add_column("ours s", justify="right")
    table.add_column("bare scikit-learn s", justify="right")
    table.add_column("ratio", justify="right")
    for step, (ours, bare) in results.items():
        table.add_row(step, f"{ours:.2f}", f"{bare:.2f}", f"{ours / bare:.2f}")
    console.print(table)
    metrics = uplift.metrics
    console.print(
        f"uplift holdout: Qini {metrics['qini_auc']:.3f}, AUUC {metrics['auuc']:.3f}, top decile "
        f"{metrics['uplift_by_decile'][0]['uplift'] * 100:+.1f} points, "
        f"observed {metrics['validation_uplift'] * 100:+.2f}; "
        f"response holdout ROC AUC {response.metrics['roc_auc']:.3f}; "
        f"largest score difference to bare: uplift {uplift_gap:.1e}, response {response_gap:.1e}; "
        f"peak {peak_mib():.0f} MiB"
    )

    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    report = {
        "rows": len(frame),
        "features": NUMERIC + CATEGORICAL,
        "treated_share": float(t.mean()),
        "scikit_learn": sklearn.__version__,
        "python": platform.python_version(),
        "steps": {
            step: {"seconds": round(ours, 3), "bare_seconds": round(bare, 3), "ratio": round(ours / bare, 2)}
            for step, (ours, bare) in results.items()
        },
        "uplift_metrics": {key: metrics[key] for key in ("qini_auc", "auuc", "validation_uplift")},
        "response_roc_auc": response.metrics["roc_auc"],
        "max_score_difference": {"uplift": uplift_gap, "response": response_gap},
        "peak_mib": round(peak_mib()),
    }
    (out / "training_bench.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
