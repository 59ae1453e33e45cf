import hashlib
import re

import numpy as np
import pytest
from scipy import stats

from orchestrator.targeting.control import (
    assign_variants,
    control_mask,
    hash_positions,
    score_deciles,
    stratified_control_mask,
)


def test_control_share_is_close_to_requested_and_uniform():
    ids = [f"C{i:07d}" for i in range(50_000)]
    positions = hash_positions(ids, "spring")
    assert stats.kstest(positions, "uniform").pvalue > 0.001
    mask = control_mask(ids, 0.1, "spring")
    assert abs(mask.mean() - 0.1) < 0.006


def test_positions_are_the_documented_blake2b_of_salt_nul_id():
    ids = ["C1", "", "zoë-ß", "x" * 300, "C1", "a\x00b"]
    expected = [
        int.from_bytes(hashlib.blake2b(f"spring\x00{cid}".encode(), digest_size=8).digest(), "big") / 2**64
        for cid in ids
    ]
    assert hash_positions(ids, "spring").tolist() == expected
    assert hash_positions(np.asarray(ids, dtype=object), "spring").tolist() == expected


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


# --- stratified control groups --------------------------------------------------------------


def _ids(n):
    return [f"C{i:07d}" for i in range(n)]


def test_stratified_share_is_within_one_customer_in_every_stratum():
    ids = _ids(20_000)
    rng = np.random.default_rng(7)
    deciles = score_deciles(rng.random(len(ids)))
    for share in (0.05, 0.1, 0.37):
        mask = stratified_control_mask(ids, share, "spring", deciles)
        for decile in range(10):
            members = deciles == decile
            assert abs(mask[members].sum() - share * members.sum()) <= 1


def test_stratified_share_with_uneven_and_tiny_strata():
    sizes = {"north": 7, "south": 13, "east": 1, "west": 1_003}
    strata = np.array([name for name, size in sizes.items() for _ in range(size)])
    ids = _ids(len(strata))
    mask = stratified_control_mask(ids, 0.3, "s", strata)
    for name, size in sizes.items():
        assert abs(mask[strata == name].sum() - 0.3 * size) <= 1
    # round half up: 0.5 of one customer puts them in the control group
    assert stratified_control_mask(["only"], 0.5, "s", np.array([0])).tolist() == [True]


def test_stratified_takes_the_lowest_hash_positions_of_each_stratum():
    ids = _ids(1_000)
    strata = np.arange(len(ids)) % 4
    mask = stratified_control_mask(ids, 0.2, "s", strata)
    positions = hash_positions(ids, "s")
    for stratum in range(4):
        members = strata == stratum
        assert positions[members & mask].max() < positions[members & ~mask].min()


def test_stratified_is_deterministic_and_independent_of_order():
    ids = _ids(5_000)
    strata = np.arange(len(ids)) % 10
    mask = stratified_control_mask(ids, 0.15, "salt-a", strata)
    assert np.array_equal(mask, stratified_control_mask(ids, 0.15, "salt-a", strata))
    order = np.random.default_rng(3).permutation(len(ids))
    shuffled = stratified_control_mask([ids[i] for i in order], 0.15, "salt-a", strata[order])
    assert np.array_equal(shuffled, mask[order])
    other_salt = stratified_control_mask(ids, 0.15, "salt-b", strata)
    assert not np.array_equal(other_salt, mask)


def test_stratified_zero_share_empty_and_bad_input():
    assert not stratified_control_mask(["a", "b"], 0.0, "s", np.array([1, 2])).any()
    assert stratified_control_mask([], 0.3, "s", np.array([])).shape == (0,)
    with pytest.raises(ValueError, match="Got 1.5 instead"):
        stratified_control_mask(["a"], 1.5, "s", np.array([0]))
    with pytest.raises(ValueError, match=r"expected shape \(2,\), got \(3,\) instead"):
        stratified_control_mask(["a", "b"], 0.1, "s", np.array([0, 1, 2]))


def test_score_deciles_split_distinct_scores_in_tenths():
    scores = np.random.default_rng(11).normal(size=1_003)
    deciles = score_deciles(scores)
    assert deciles.min() == 0 and deciles.max() == 9
    counts = np.bincount(deciles, minlength=10)
    assert np.all(np.abs(counts - len(scores) / 10) <= 1)
    assert deciles[np.argmin(scores)] == 0 and deciles[np.argmax(scores)] == 9
    assert np.all(np.diff(deciles[np.argsort(scores)]) >= 0)


def test_score_deciles_ties_share_a_decile_whatever_the_order():
    scores = np.array([0.1] * 5 + [0.5] * 30 + [0.9] * 5 + list(np.linspace(1, 2, 60)))
    deciles = score_deciles(scores)
    for value in (0.1, 0.5, 0.9):
        assert len(set(deciles[scores == value].tolist())) == 1
    order = np.random.default_rng(5).permutation(len(scores))
    assert np.array_equal(score_deciles(scores[order]), deciles[order])
    assert score_deciles(np.array([])).shape == (0,)
    with pytest.raises(ValueError, match="NaN at position 1"):
        score_deciles(np.array([0.2, np.nan]))


# --- A/B variants ---------------------------------------------------------------------------


def test_variant_shares_are_close_to_target():
    ids = _ids(50_000)
    target = {"A": 0.5, "B": 0.3, "C": 0.2}
    variants = assign_variants(ids, target, "spring")
    assert variants.dtype == object
    observed = np.array([(variants == name).sum() for name in target])
    expected = np.array(list(target.values())) * len(ids)
    assert np.all(np.abs(observed / len(ids) - np.array(list(target.values()))) < 0.01)
    assert stats.chisquare(observed, expected).pvalue > 0.001


def _control_variant_dependence(mask, variants):
    table = [[np.sum(mask & (variants == v)), np.sum(~mask & (variants == v))] for v in np.unique(variants)]
    return stats.chi2_contingency(table).pvalue


def test_variants_are_independent_of_control_membership():
    ids = _ids(50_000)
    mask = control_mask(ids, 0.3, "spring")
    variants = assign_variants(ids, {"A": 0.5, "B": 0.5}, "spring")
    assert _control_variant_dependence(mask, variants) > 0.001
    # The same test catches a variant drawn from the control hash itself.
    same_hash = np.where(hash_positions(ids, "spring") < 0.5, "A", "B")
    assert _control_variant_dependence(mask, same_hash) < 1e-6


def test_variants_are_stable_and_ignore_mapping_order():
    ids = _ids(3_000)
    a = assign_variants(ids, {"A": 0.6, "B": 0.4}, "s")
    assert np.array_equal(a, assign_variants(ids, {"B": 0.4, "A": 0.6}, "s"))
    assert np.array_equal(a[::-1], assign_variants(ids[::-1], {"A": 0.6, "B": 0.4}, "s"))
    assert 0.4 < (a != assign_variants(ids, {"A": 0.6, "B": 0.4}, "other")).mean() < 0.6
    # Moving the split from 60/40 to 50/50 only moves customers from A to B.
    b = assign_variants(ids, {"A": 0.5, "B": 0.5}, "s")
    assert not np.any((a == "B") & (b == "A"))


def test_zero_share_variant_gets_nobody_and_empty_ids():
    variants = assign_variants(_ids(2_000), {"A": 0.7, "B": 0.3, "Z": 0.0}, "s")
    assert set(variants.tolist()) == {"A", "B"}
    assert assign_variants([], {"A": 1.0}, "s").shape == (0,)


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"A": 0.5, "B": 0.4}, "The variant shares must add up to 1. Got 0.9 instead."),
        ({"A": 0.1, "B": 0.2, "C": 0.6}, "The variant shares must add up to 1. Got 0.9 instead."),
        ({"A": 0.7, "B": 0.7}, "The variant shares must add up to 1. Got 1.4 instead."),
        ({"A": 1.5, "B": -0.5}, "The share of variant 'A' must be in [0, 1]. Got 1.5 instead."),
        ({}, "needs at least one variant"),
    ],
)
def test_bad_variant_shares_are_rejected_with_the_value(variants, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        assign_variants(["a"], variants, "s")
