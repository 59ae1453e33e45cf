"""Channel allocation checked against an exact LP reference (HiGHS), hand-made cases and a pruning-free flow."""

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from orchestrator.targeting import allocation
from orchestrator.targeting.allocation import Allocation, AllocationStatus, allocate

A, OVER, NOT_WORTH, NONE = (
    AllocationStatus.ASSIGNED,
    AllocationStatus.OVER_CAPACITY,
    AllocationStatus.NOT_WORTH,
    AllocationStatus.NO_OPTION,
)


# --- references ---------------------------------------------------------------------------------


def lp_optimum(customer, pool, value, capacities, n_customers, min_value=0.0) -> float:
    """The optimum by HiGHS: max sum v x, one option per customer, capacity per pool, 0 <= x <= 1.

    The constraint matrix is that of a bipartite b-matching (totally unimodular), so the LP
    optimum is the integer optimum.
    """
    keep = np.flatnonzero(value >= min_value)
    if len(keep) == 0:
        return 0.0
    c, p, v = customer[keep], pool[keep], value[keep]
    n = len(keep)
    finite = [q for q, cap in enumerate(capacities) if cap is not None]
    row_of_pool = {q: n_customers + i for i, q in enumerate(finite)}
    rows = [c]
    cols = [np.arange(n)]
    limited = np.array([q in row_of_pool for q in p.tolist()], dtype=bool)
    rows.append(np.array([row_of_pool[q] for q in p[limited].tolist()], dtype=np.int64))
    cols.append(np.flatnonzero(limited))
    a = coo_matrix(
        (np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_customers + len(finite), n),
    )
    b = np.concatenate([np.ones(n_customers), [capacities[q] for q in finite]])
    res = linprog(-v, A_ub=a.tocsr(), b_ub=b, bounds=(0, 1), method="highs")
    assert res.status == 0, res.message
    return -res.fun


def wait_reference(customer, pool, value, capacities, n_customers, min_value=0.0) -> np.ndarray:
    """Plain Python: each customer's best option; per full pool the highest values (then lowest index) win."""
    best: dict[int, int] = {}
    for k in range(len(customer)):
        if value[k] < min_value:
            continue
        c = int(customer[k])
        if c not in best or (value[k], -pool[k]) > (value[best[c]], -pool[best[c]]):
            best[c] = k
    chosen = np.full(n_customers, -1)
    for q, cap in enumerate(capacities):
        mine = sorted((k for k in best.values() if pool[k] == q), key=lambda k: (-value[k], customer[k]))
        for k in mine if cap is None else mine[:cap]:
            chosen[customer[k]] = k
    return chosen


def random_instance(rng, n_customers, n_pools, density=0.6, integer_values=False):
    customer, pool = np.nonzero(rng.random((n_customers, n_pools)) < density)
    if integer_values:  # many ties
        value = rng.integers(-3, 6, len(customer)).astype(float)
    else:
        value = np.round(rng.normal(2.0, 4.0, len(customer)), 3)
    capacities = [
        None if rng.random() < 0.3 else int(rng.integers(0, max(2, n_customers // 2))) for _ in range(n_pools)
    ]
    perm = rng.permutation(len(customer))  # options in no particular order
    return customer[perm], pool[perm], value[perm], capacities


def check_feasible(result: Allocation, customer, pool, value, capacities, n_customers, min_value=0.0):
    got = np.flatnonzero(result.option >= 0)
    chosen = result.option[got]
    assert np.array_equal(customer[chosen], got), "an option was given to another customer"
    assert np.all(value[chosen] >= min_value)
    counts = np.bincount(pool[chosen], minlength=len(capacities))
    assert np.array_equal(result.pool_counts, counts)
    for q, cap in enumerate(capacities):
        if cap is not None:
            assert counts[q] <= cap
    assert np.array_equal(result.pool[got], pool[chosen])
    assert np.all(result.pool[result.option < 0] == -1)
    assert result.total_value == pytest.approx(value[chosen].sum(), abs=1e-9)
    # statuses
    has = np.zeros(n_customers, dtype=bool)
    has[customer] = True
    worth = np.zeros(n_customers, dtype=bool)
    worth[customer[value >= min_value]] = True
    expected = np.where(result.option >= 0, A, np.where(worth, OVER, np.where(has, NOT_WORTH, NONE)))
    assert np.array_equal(result.status, expected)


# --- optimality on random instances ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(150))
def test_fallback_is_optimal_on_random_instances(seed):
    rng = np.random.default_rng(seed)
    n_customers = int(rng.integers(1, 40))
    n_pools = int(rng.integers(1, 5))
    customer, pool, value, capacities = random_instance(rng, n_customers, n_pools, integer_values=seed % 3 == 0)
    min_value = [0.0, 0.5, 2.0][seed % 3]
    result = allocate(customer, pool, value, capacities, n_customers=n_customers, min_value=min_value)
    check_feasible(result, customer, pool, value, capacities, n_customers, min_value)
    assert result.total_value == pytest.approx(
        lp_optimum(customer, pool, value, capacities, n_customers, min_value), abs=1e-6 * n_customers + 1e-9
    )
    # Nobody waits while one of their worthwhile pools has room.
    counts = result.pool_counts
    for c in np.flatnonzero(result.status == OVER):
        for k in np.flatnonzero((customer == c) & (value >= min_value)):
            cap = capacities[pool[k]]
            assert cap is not None and counts[pool[k]] == cap


@pytest.mark.parametrize("seed", range(60))
def test_wait_matches_reference_on_random_instances(seed):
    rng = np.random.default_rng(1000 + seed)
    n_customers = int(rng.integers(1, 40))
    n_pools = int(rng.integers(1, 5))
    customer, pool, value, capacities = random_instance(rng, n_customers, n_pools, integer_values=seed % 2 == 0)
    result = allocate(customer, pool, value, capacities, n_customers=n_customers, overflow="wait")
    check_feasible(result, customer, pool, value, capacities, n_customers)
    assert np.array_equal(result.option, wait_reference(customer, pool, value, capacities, n_customers))


def test_wait_never_beats_fallback():
    rng = np.random.default_rng(7)
    for _ in range(30):
        customer, pool, value, capacities = random_instance(rng, 30, 3)
        fallback = allocate(customer, pool, value, capacities, n_customers=30)
        wait = allocate(customer, pool, value, capacities, n_customers=30, overflow="wait")
        assert wait.total_value <= fallback.total_value + 1e-9


# --- hand-made cases --------------------------------------------------------------------------------

EMAIL, CALL, VISIT = 0, 1, 2


def test_fallback_moves_a_customer_to_their_next_channel():
    # 0: call 20 or email 5; 1: call 30 only; the call center takes one.
    customer, pool, value = np.array([0, 0, 1]), np.array([CALL, EMAIL, CALL]), np.array([20.0, 5.0, 30.0])
    r = allocate(customer, pool, value, [None, 1], n_customers=2)
    assert r.option.tolist() == [1, 2] and r.pool.tolist() == [EMAIL, CALL]
    assert r.total_value == 35.0 and r.pool_counts.tolist() == [1, 1]
    w = allocate(customer, pool, value, [None, 1], n_customers=2, overflow="wait")
    assert w.option.tolist() == [-1, 2] and w.status.tolist() == [OVER, A]
    assert w.total_value == 30.0


def test_fallback_gives_the_scarce_channel_to_the_largest_gain_not_the_largest_value():
    # 0: call 100, email 95 (gain 5); 1: call 60, no email (gain 60). Call center takes one.
    customer, pool, value = np.array([0, 0, 1]), np.array([CALL, EMAIL, CALL]), np.array([100.0, 95.0, 60.0])
    r = allocate(customer, pool, value, [None, 1], n_customers=2)
    assert r.pool.tolist() == [EMAIL, CALL] and r.total_value == 155.0
    w = allocate(customer, pool, value, [None, 1], n_customers=2, overflow="wait")
    assert w.pool.tolist() == [CALL, -1] and w.status.tolist() == [A, OVER] and w.total_value == 100.0


def test_chain_of_fallbacks_across_two_capacitated_pools():
    # 0: call 10, visit 9; 1: call 8, visit 1; call and visit take one each -> 0 visit, 1 call (17).
    customer, pool, value = np.array([0, 0, 1, 1]), np.array([CALL, VISIT, CALL, VISIT]), np.array([10.0, 9, 8, 1])
    r = allocate(customer, pool, value, [None, 1, 1], n_customers=2)
    assert r.pool.tolist() == [VISIT, CALL] and r.total_value == 17.0
    w = allocate(customer, pool, value, [None, 1, 1], n_customers=2, overflow="wait")
    assert w.pool.tolist() == [CALL, -1] and w.status.tolist() == [A, OVER]


def test_statuses_min_value_and_negative_values():
    # 0: no option; 1: only negative; 2: below min_value 1; 3: email 2; 4: call 3 but the pool is full (0).
    customer = np.array([1, 2, 3, 4, 1])
    pool = np.array([EMAIL, EMAIL, EMAIL, CALL, CALL])
    value = np.array([-5.0, 0.5, 2.0, 3.0, -1.0])
    r = allocate(customer, pool, value, [None, 0], n_customers=6, min_value=1.0)
    assert r.status.tolist() == [NONE, NOT_WORTH, NOT_WORTH, A, OVER, NONE]
    assert r.status_names().tolist() == [
        "no_option",
        "not_worth",
        "not_worth",
        "assigned",
        "over_capacity",
        "no_option",
    ]
    assert r.option.tolist() == [-1, -1, -1, 2, -1, -1]
    assert r.count(OVER) == 1 and r.count(NONE) == 2
    assert r.chosen_pool().tolist() == [-1, -1, -1, EMAIL, -1, -1]


def test_zero_value_options_are_taken_when_there_is_room():
    customer, pool, value = np.array([0, 1, 2]), np.array([CALL, CALL, EMAIL]), np.array([0.0, 0.0, 0.0])
    r = allocate(customer, pool, value, [None, 1], n_customers=3)
    assert r.option.tolist() == [0, -1, 2] and r.status.tolist() == [A, OVER, A]


def test_unlimited_pools_each_customer_gets_their_best_and_ties_go_to_the_lower_pool():
    customer = np.array([0, 0, 1, 1, 2])
    pool = np.array([1, 0, 0, 1, 1])
    value = np.array([3.0, 3.0, 1.0, 2.0, -1.0])
    r = allocate(customer, pool, value, [None, None], n_customers=3)
    assert r.pool.tolist() == [0, 1, -1] and r.status.tolist() == [A, A, NOT_WORTH]


def test_ties_go_to_the_lower_customer_index():
    n = 10
    customer = np.repeat(np.arange(n), 2)[::-1].copy()  # options listed in reverse
    pool = np.tile([EMAIL, CALL], n)[::-1].copy()
    value = np.where(pool == CALL, 7.0, 2.0)
    for overflow in ("fallback", "wait"):
        r = allocate(customer, pool, value, [None, 3], n_customers=n, overflow=overflow)
        assert np.flatnonzero(r.pool == CALL).tolist() == [0, 1, 2], overflow
    # Only the call center: the same.
    only = pool == CALL
    r = allocate(customer[only], pool[only], value[only], [None, 3], n_customers=n)
    assert np.flatnonzero(r.pool == CALL).tolist() == [0, 1, 2]
    assert r.status.tolist() == [A] * 3 + [OVER] * 7


def test_ties_across_several_pools_with_the_same_gains():
    # Everyone: call 5, visit 5, no email; two calls, two visits: customers 0-3 get them.
    n = 8
    customer = np.repeat(np.arange(n), 2)
    pool = np.tile([CALL, VISIT], n)
    r = allocate(customer, pool, np.full(2 * n, 5.0), [None, 2, 2], n_customers=n)
    assert np.flatnonzero(r.option >= 0).tolist() == [0, 1, 2, 3]
    assert r.pool_counts.tolist() == [0, 2, 2]


def test_empty_inputs():
    empty = np.zeros(0, dtype=np.int64)
    r = allocate(empty, empty, np.zeros(0), [None, 5], n_customers=3)
    assert r.option.tolist() == [-1, -1, -1] and r.status.tolist() == [NONE] * 3 and r.total_value == 0.0
    r = allocate([], [], [], [], n_customers=0)
    assert len(r.option) == 0 and r.pool_counts.tolist() == []


# --- determinism ------------------------------------------------------------------------------------


def test_same_input_same_output_and_option_order_does_not_matter():
    rng = np.random.default_rng(3)
    customer, pool, value, capacities = random_instance(rng, 300, 4, integer_values=True)
    first = allocate(customer, pool, value, capacities, n_customers=300)
    again = allocate(customer.copy(), pool.copy(), value.copy(), capacities, n_customers=300)
    for field in ("option", "pool", "status", "pool_counts"):
        assert np.array_equal(getattr(first, field), getattr(again, field))
    perm = rng.permutation(len(customer))
    shuffled = allocate(customer[perm], pool[perm], value[perm], capacities, n_customers=300)
    assert np.array_equal(shuffled.pool, first.pool)
    assert np.array_equal(shuffled.status, first.status)


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customer": [0, 1]}, "the same length"),
        ({"customer": [0, 5, 1]}, r"customer must be in \[0, n_customers\) = \[0, 3\). Got 5 at option 1"),
        ({"customer": [0, -1, 1]}, "customer must be in"),
        ({"pool": [0, 2, 1]}, r"pool must be in \[0, len\(capacities\)\) = \[0, 2\). Got 2 at option 1"),
        ({"value": [1.0, np.nan, 2.0]}, "value must be finite. Got nan at option 1"),
        ({"value": [1.0, np.inf, 2.0]}, "value must be finite"),
        ({"customer": [0.0, 1.0, 2.0]}, "customer must be an integer array"),
        ({"customer": [[0, 1, 2]]}, "customer must be a 1-D array"),
        (
            {"customer": [0, 0, 1], "pool": [1, 1, 0]},
            "at most one option per pool: options 0 and 1 both give customer 0 pool 1",
        ),
        ({"capacities": [None, -1]}, r"capacities\[1\] must be an int >= 0 or None"),
        ({"capacities": [None, 2.5]}, r"capacities\[1\] must be an int >= 0 or None"),
        ({"n_customers": -1}, "n_customers must be an int >= 0"),
        ({"overflow": "queue"}, "overflow must be 'fallback' or 'wait'. Got 'queue'"),
        ({"min_value": -1.0}, "min_value must be a finite number >= 0"),
        ({"min_value": float("nan")}, "min_value must be a finite number >= 0"),
    ],
)
def test_invalid_input_says_what_was_expected(kwargs, message):
    args = {
        "customer": [0, 1, 2],
        "pool": [0, 1, 1],
        "value": [1.0, 2.0, 3.0],
        "capacities": [None, 1],
        "n_customers": 3,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        allocate(
            np.asarray(args.pop("customer")),
            np.asarray(args.pop("pool")),
            np.asarray(args.pop("value")),
            args.pop("capacities"),
            **args,
        )


def test_values_too_large_for_integer_costs():
    with pytest.raises(ValueError, match="values too large"):
        allocate(np.array([0, 1]), np.array([0, 0]), np.array([1e15, 2e15]), [1], n_customers=2)


# --- scale and pruning ------------------------------------------------------------------------------


def channel_instance(rng, n, territories, call_cap, visit_cap):
    """Email (unlimited), call center and one field-force pool per territory; as in the benchmark."""
    score = rng.beta(2, 8, n)
    territory = rng.integers(0, territories, n)
    parts = []
    for pool_of, share, worth, cost in (
        (np.zeros(n, dtype=np.int64), 0.7, 60.0, 0.1),
        (np.ones(n, dtype=np.int64), 0.5, 150.0, 4.0),
        (2 + territory, 0.3, 400.0, 25.0),
    ):
        rows = np.flatnonzero(rng.random(n) < share)
        v = np.round(score[rows] * worth * rng.uniform(0.8, 1.2, len(rows)) - cost, 2)
        parts.append((rows, pool_of[rows], v))
    customer, pool, value = (np.concatenate([p[i] for p in parts]) for i in range(3))
    capacities = [None, call_cap, *([visit_cap] * territories)]
    return customer, pool, value, capacities


def unpruned_optimum(customer, pool, value, capacities, n_customers) -> float:
    """The optimum by the same flow over ALL capacitated options (no pruning)."""
    caps = np.array([-1 if c is None else c for c in capacities])
    base = np.zeros(n_customers)
    free = (caps[pool] < 0) & (value >= 0)
    np.maximum.at(base, customer[free], value[free])
    limited = np.flatnonzero((caps[pool] > 0) & (value >= 0) & (value - base[customer] > 0))
    limited = limited[np.lexsort((pool[limited], customer[limited]))]
    gain = value[limited] - base[customer[limited]]
    assigned = allocation._solve_flow(customer[limited], pool[limited], gain, caps)
    return base.sum() + gain[assigned].sum()


@pytest.fixture
def flow_sizes(monkeypatch):
    sizes = []
    solve = allocation._solve_flow

    def recording(cust, pools, gain, caps):
        sizes.append(len(gain))
        return solve(cust, pools, gain, caps)

    monkeypatch.setattr(allocation, "_solve_flow", recording)
    return sizes


def test_medium_instance_equals_unpruned_flow_and_lp(flow_sizes):
    rng = np.random.default_rng(21)
    n = 20_000
    customer, pool, value, capacities = channel_instance(rng, n, territories=5, call_cap=300, visit_cap=40)
    r = allocate(customer, pool, value, capacities, n_customers=n)
    check_feasible(r, customer, pool, value, capacities, n)
    assert flow_sizes and flow_sizes[0] < 0.2 * np.count_nonzero(pool > 0)  # pruning kept few options
    exact = unpruned_optimum(customer, pool, value, capacities, n)
    assert r.total_value == pytest.approx(exact, abs=1e-6 * n)
    assert r.total_value == pytest.approx(lp_optimum(customer, pool, value, capacities, n), abs=1e-6 * n)
    assert r.pool_counts[1] == 300 and np.all(r.pool_counts[2:] == 40)


def test_large_instance_with_pruning(flow_sizes):
    rng = np.random.default_rng(22)
    n = 200_000
    customer, pool, value, capacities = channel_instance(rng, n, territories=20, call_cap=1_000, visit_cap=60)
    r = allocate(customer, pool, value, capacities, n_customers=n)
    check_feasible(r, customer, pool, value, capacities, n)
    k = 1_000 + 20 * 60
    assert flow_sizes[0] <= 21 * k and flow_sizes[0] < 0.5 * np.count_nonzero(pool > 0)
    assert r.total_value == pytest.approx(unpruned_optimum(customer, pool, value, capacities, n), abs=1e-6 * k)
    w = allocate(customer, pool, value, capacities, n_customers=n, overflow="wait")
    check_feasible(w, customer, pool, value, capacities, n)
    assert w.total_value < r.total_value
    assert w.count(OVER) > r.count(OVER)


def test_capacities_larger_than_demand_keep_every_option(flow_sizes):
    rng = np.random.default_rng(23)
    n = 5_000
    customer, pool, value, capacities = channel_instance(rng, n, territories=3, call_cap=n, visit_cap=n)
    r = allocate(customer, pool, value, capacities, n_customers=n)
    check_feasible(r, customer, pool, value, capacities, n)
    assert r.total_value == pytest.approx(lp_optimum(customer, pool, value, capacities, n), abs=1e-6 * n)
    # Nothing is full: every customer gets their best worthwhile option.
    best = np.zeros(n)
    ok = value >= 0
    np.maximum.at(best, customer[ok], value[ok])
    assert r.total_value == pytest.approx(best.sum(), abs=1e-9 * n)


@pytest.mark.parametrize("seed", range(80))
def test_fallback_is_optimal_when_pruning_cuts_deep(seed, flow_sizes):
    """Small capacities over many pools: the refined pruning drops most options, the optimum stays."""
    rng = np.random.default_rng(5000 + seed)
    n_customers, n_pools = 80, 6
    customer, pool, value, _ = random_instance(rng, n_customers, n_pools, density=0.5, integer_values=seed % 2 == 0)
    capacities = [None, *(int(c) for c in rng.integers(0, 4, n_pools - 1))]
    result = allocate(customer, pool, value, capacities, n_customers=n_customers)
    check_feasible(result, customer, pool, value, capacities, n_customers)
    assert result.total_value == pytest.approx(
        lp_optimum(customer, pool, value, capacities, n_customers), abs=1e-6 * n_customers
    )
    if flow_sizes:
        assert flow_sizes[0] < np.count_nonzero(pool > 0)
