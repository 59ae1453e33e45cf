"""ContactFrame: equal-length columns, defaults for what is left out, subsets that keep rows together."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.targeting.frame import ContactFrame


def test_columns_left_out_are_none_nan_or_minus_one_and_one_channel_is_for_all():
    frame = ContactFrame.of(["a", "b", "c"], ["treatment", "control", "global_control"], channel="email")
    assert len(frame) == 3
    assert frame.channel.tolist() == ["email"] * 3
    assert frame.variant.tolist() == [None] * 3 and frame.assignee.tolist() == [None] * 3
    assert np.isnan(frame.score).all() and np.isnan(frame.expected_value).all()
    assert frame.pool.tolist() == [-1, -1, -1] and frame.pool.dtype == np.int64
    assert frame.treated.tolist() == [True, False, False]
    assert frame.count("control") == 1


def test_every_column_must_have_one_value_per_customer():
    with pytest.raises(ValueError, match=r"one value per customer_id \(3\)\. Got arm: 2, score: 4\."):
        ContactFrame.of(["a", "b", "c"], ["treatment", "control"], score=[0.1, 0.2, 0.3, 0.4])
    frame = ContactFrame.of(["a", "b"], ["treatment", "control"])
    with pytest.raises(ValueError, match=r"Got channel: 1\."):
        frame.replace(channel=np.array(["email"], dtype=object))


def test_take_replace_and_concat_keep_each_contact_together():
    first = ContactFrame.of(["a", "b", "c"], ["treatment", "control", "treatment"], score=[0.9, 0.5, 0.1])
    second = ContactFrame.of(["d"], ["global_control"])
    both = ContactFrame.concat([first, second])
    assert both.customer_id.tolist() == ["a", "b", "c", "d"]
    kept = both.take(both.arm != "control").replace(channel=np.array(["email", "call_center", None], dtype=object))
    assert kept.customer_id.tolist() == ["a", "c", "d"]
    assert kept.channel.tolist() == ["email", "call_center", None]
    assert kept.score[:2].tolist() == [0.9, 0.1] and np.isnan(kept.score[2])
    assert first.channel.tolist() == [None, None, None]  # replace makes a copy
    assert len(ContactFrame.concat([])) == 0
