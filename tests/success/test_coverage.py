"""Coverage, proven on simulated worlds with known effects: the report's 95% intervals for incremental
successes contain the true expected incremental buyers in about 95% of waves (``bench/coverage_bench.py``,
here with fewer replicates): a single-channel campaign, a multichannel campaign whose control group mirrors
the treated allocation per channel (without and with a channel uplift model's scores), and the waves of a
closed loop that retrains its model between waves, read back from the ledger."""

import argparse

import pytest

from bench.coverage_bench import run


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_intervals_of_incremental_successes_cover_the_truth():
    args = argparse.Namespace(
        customers=6000,
        emails=1500,
        calls=300,
        visits=75,
        replicates=60,
        loops=2,
        waves=3,
        explore=0.1,
        worlds=["young-valued"],
    )
    results = run(args)
    for name in ("single-channel", "multichannel", "multichannel-scored"):
        summary = results[name]
        assert summary["waves"] == 60
        # 95% nominal: with 60 waves, below 85% would happen by chance with probability < 0.5%
        assert summary["coverage"] >= 0.85, summary
        assert summary["adjusted_coverage"] >= 0.85, summary
        assert summary["srm_flags"] == 0, summary
        # no systematic error: the mean error is small against the interval's half-width
        assert abs(summary["mean_error"]) < 0.25 * summary["mean_width"] / 2, summary
    loop = results["retrained"]
    assert loop["waves"] == 6
    assert loop["coverage"] >= 4 / 6, loop  # 6 waves: at least 4 covered (P(< 4 | 95%) < 0.3%)
