import numpy as np
import pytest
from scipy import stats

from orchestrator.control import control_mask, hash_positions


def test_control_share_is_close_to_requested_and_uniform():
    ids = [f"C{i:07d}" for i in range(50_000)]
    positions = hash_positions(ids, "spring")
    assert stats.kstest(positions, "uniform").pvalue > 0.001
    mask = control_mask(ids, 0.1, "spring")
    assert abs(mask.mean() - 0.1) < 0.006


def test_same_salt_same_group_regardless_of_order():
    ids = [f"C{i}" for i in range(2_000)]
    mask = control_mask(ids, 0.2, "salt-a")
    reversed_mask = control_mask(ids[::-1], 0.2, "salt-a")[::-1]
    assert np.array_equal(mask, reversed_mask)


def test_other_salt_draws_other_group():
    ids = [f"C{i}" for i in range(2_000)]
    a = control_mask(ids, 0.5, "salt-a")
    b = control_mask(ids, 0.5, "salt-b")
    assert 0.4 < (a != b).mean() < 0.6


def test_zero_share_and_empty():
    assert not control_mask(["a", "b"], 0.0, "s").any()
    assert control_mask([], 0.3, "s").shape == (0,)


def test_bad_share_is_rejected_with_the_value():
    with pytest.raises(ValueError, match="Got 1.5 instead"):
        control_mask(["a"], 1.5, "s")
