"""Benchmark: training and scoring a per-channel uplift model (3 channels) against one single-channel uplift model.

    .venv/bin/python bench/channel_training_bench.py                 # 1,000,000 customers
    .venv/bin/python bench/channel_training_bench.py --rows 200000   # a quick run

The data: ``bench/training_bench.py``'s customers (8 features, missing values, text and yes/no
columns), 80 % treated and 20 % control; the treated got one of 3 channels at random, each with
an effect of its own. Timed in the same run, fit then scoring of every row:

- ``ChannelUpliftModel`` (``orchestrator.scoring.channel_uplift``) with its defaults, learning the
  effect of each of the 3 channels (``effects_frame``);
- ``UpliftModel`` (``orchestrator.scoring.uplift``), two-model, learning the one effect of a
  contact, with the same learner (gradient boosting) and with its default (logistic).

The target (issue "The closed loop learns which channel moves each customer"): the channel model
within 3x the time of one single-channel uplift model. The ratios are printed last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stages import peak_mib  # noqa: E402
from bench.training_bench import make_customers  # noqa: E402

CHANNELS = ("email", "call_center", "field_force")


def main(argv: list[str] | None = None) -> dict:
    import numpy as np

    from orchestrator.scoring.channel_uplift import CONTROL, ChannelUpliftModel
    from orchestrator.scoring.uplift import UpliftModel

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--approach", default=None, help="the channel model's meta-learner (default: its default)")
    args = parser.parse_args(argv)
    approach = args.approach or ChannelUpliftModel().approach
    label = f"channel uplift (3 channels, {approach}, gb)"
    frame = make_customers(args.rows)
    rng = np.random.default_rng(7)
    treated = frame["treated"].to_numpy() == 1
    channel = np.where(treated, np.array(CHANNELS, dtype=object)[rng.integers(0, 3, len(frame))], CONTROL)
    lift = {"email": 0.01, "call_center": 0.04, "field_force": 0.08}
    y = (frame["responded"].to_numpy() == "yes").astype(int)
    for name, effect in lift.items():  # each channel adds its own effect on top of the data's one
        mask = (channel == name) & (rng.random(len(frame)) < effect)
        y[mask] = 1
    X = frame.drop(columns=["treated", "responded"])

    results = {}

    def timed(name, fit, score):
        start = time.perf_counter()
        model = fit()
        trained = time.perf_counter()
        score(model)
        done = time.perf_counter()
        results[name] = {"fit_s": round(trained - start, 2), "score_s": round(done - trained, 2)}
        results[name]["total_s"] = round(done - start, 2)
        print(f"{name:<48} fit {trained - start:7.2f} s  score {done - trained:6.2f} s", flush=True)

    timed(
        label,
        lambda: ChannelUpliftModel(approach=approach).fit(X, channel, y),
        lambda m: m.effects_frame(X),
    )
    for estimator in ("gradient_boosting", "logistic"):
        timed(
            f"single-channel uplift (two_model, {estimator})",
            lambda estimator=estimator: UpliftModel(estimator=estimator).fit(X, treated.astype(int), y),
            lambda m: m.score_frame(X),
        )
    channel_total = results[label]["total_s"]
    ratios = {
        estimator: round(channel_total / results[f"single-channel uplift (two_model, {estimator})"]["total_s"], 2)
        for estimator in ("gradient_boosting", "logistic")
    }
    summary = {"rows": args.rows, "results": results, "ratio_to_single": ratios, "peak_mib": peak_mib()}
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "channel_training_bench.json").write_text(json.dumps(summary, indent=2))
    print(
        f"channel model / single-channel model (fit + score, {args.rows:,} rows): "
        f"{ratios['gradient_boosting']:.2f}x (same learner), {ratios['logistic']:.2f}x (its default, logistic); "
        "target <= 3x"
    )
    return summary


if __name__ == "__main__":
    main()
