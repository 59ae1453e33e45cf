"""Sample ratio mismatch: per wave, whether the arms and the variants were drawn in the configured shares.

Contract. ``_sample_ratios(frame, waves, variant_shares)`` returns, for each wave in ``waves``
order, a ``SampleRatioCheck`` of the treated against the control counts versus the control share
the wave was drawn with (the median of its contacts' recorded ``arm_propensity``; no check when none
is recorded), and one of the treated customers' variants versus ``variant_shares`` (only for waves
whose treated variants are all configured ones). The test is the chi-squared goodness of fit of
``orchestrator.success.statistics.sample_ratio_test``, a mismatch below p = 0.001; each check's
message says which share is off and what to distrust. ``_flag_mismatches(segments, checks)`` adds
the flag ``"sample ratio mismatch"`` to the overall segment and to each mismatched wave (in place).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from orchestrator.success.notes import _p
from orchestrator.success.report_types import (
    CONTROL,
    FLAG_SRM,
    MISSING_KEY,
    TREATMENT,
    SampleRatioCheck,
    Segment,
)
from orchestrator.success.segments import _codes
from orchestrator.success.statistics import sample_ratio_test


def _sample_ratios(
    frame: pd.DataFrame, waves: list[str], variant_shares: dict[str, float] | None
) -> list[SampleRatioCheck]:
    """Per wave, the arms against the recorded control share and the variants against their configured shares."""
    checks: list[SampleRatioCheck] = []
    if not len(frame):
        return checks
    codes, names = _codes(frame["wave"].astype(str))
    treated = (frame["arm"] == TREATMENT).to_numpy()
    n_treated = np.bincount(codes[treated], minlength=len(names))
    n_control = np.bincount(codes[~treated], minlength=len(names))
    shares = _recorded_shares(frame, codes, treated, len(names))
    variants = _variant_counts(frame, codes, treated, names, variant_shares)
    index = {name: i for i, name in enumerate(names)}
    for key in waves:
        i = index[key]
        n_t, n_c, share = int(n_treated[i]), int(n_control[i]), shares[i]
        if not math.isnan(share) and n_t + n_c:
            result = sample_ratio_test({TREATMENT: n_t, CONTROL: n_c}, {TREATMENT: 1 - share, CONTROL: share})
            message = (
                f"wave {key}: the control group is {_share(result.observed_share(CONTROL))} of the wave, "
                f"{_share(share)} was configured (chi-squared p {_p(result.p_value)}): do not trust this wave's "
                f"lift until the cause is found (a filter applied to one arm, a broken split, contacts lost in one arm)"
            )
            checks.append(
                SampleRatioCheck(
                    key, "arms", result.observed, result.expected_shares, result.p_value, result.mismatch, message
                )
            )
        counts = variants.get(key)
        if variant_shares and counts is not None:
            result = sample_ratio_test(counts, dict(variant_shares))
            worst = max(counts, key=lambda k: abs((result.observed_share(k) or 0) - variant_shares[k]))
            message = (
                f"wave {key}: variant {worst} has {_share(result.observed_share(worst))} of the treated customers, "
                f"{_share(variant_shares[worst])} was configured (chi-squared p {_p(result.p_value)}): do not trust "
                f"the variant comparison of this wave until the cause is found"
            )
            checks.append(
                SampleRatioCheck(
                    key, "variants", result.observed, result.expected_shares, result.p_value, result.mismatch, message
                )
            )
    return checks


def _recorded_shares(frame: pd.DataFrame, codes: np.ndarray, treated: np.ndarray, n_waves: int) -> np.ndarray:
    """Per wave: the control share it was drawn with, from its contacts' recorded arm propensities (NaN: none)."""
    shares = np.full(n_waves, np.nan)
    if "arm_propensity" not in frame.columns:
        return shares
    propensity = frame["arm_propensity"].to_numpy(dtype=np.float64, na_value=np.nan)
    control_share = np.where(treated, 1 - propensity, propensity)
    known = ~np.isnan(control_share)
    if known.any():
        medians = pd.Series(control_share[known]).groupby(codes[known]).median()
        shares[medians.index.to_numpy()] = medians.to_numpy()
    shares[(shares <= 0) | (shares >= 1)] = np.nan
    return shares


def _variant_counts(
    frame: pd.DataFrame, codes: np.ndarray, treated: np.ndarray, names: list[str], shares: dict[str, float] | None
) -> dict[str, dict[str, int]]:
    """Per wave whose treated variants are all configured ones: the count of each configured variant."""
    if not shares:
        return {}
    variant = frame["variant"].to_numpy(dtype=object)[treated]
    table = pd.crosstab(codes[treated], pd.Series(variant).fillna(MISSING_KEY).astype(str).to_numpy())
    out: dict[str, dict[str, int]] = {}
    for i, row in table.iterrows():
        present = {str(k) for k, v in row.items() if v > 0}
        if present - set(shares) or not present:
            continue
        out[names[int(i)]] = {name: int(row.get(name, 0)) for name in shares}
    return out


def _share(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x * 100:.1f}%".replace(".0%", "%")


def _flag_mismatches(segments: list[Segment], checks: list[SampleRatioCheck]) -> None:
    broken = {c.wave for c in checks if c.mismatch}
    if not broken:
        return
    for s in segments:
        if (s.dimension == "wave" and s.key in broken) or s.dimension == "overall":
            s.flags.append(FLAG_SRM)
