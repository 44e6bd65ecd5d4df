"""Contrastive pairs: balanced, never a row with itself, seeded."""

from __future__ import annotations

import pytest

from sftlab.data.pairs import contrastive_pairs
from sftlab.utils.errors import SftlabError

LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]


def test_pairs_are_balanced_and_never_pair_a_row_with_itself():
    pairs = contrastive_pairs(LABELS, pairs_per_row=3, seed=0)
    assert len(pairs) == 2 * 3 * len(LABELS)  # one positive and one negative per row and round
    assert sum(t for _, _, t in pairs) == len(pairs) / 2
    for i, j, target in pairs:
        assert i != j
        assert (LABELS[i] == LABELS[j]) == (target == 1.0)


def test_the_seed_decides_the_pairs():
    assert contrastive_pairs(LABELS, 2, seed=1) == contrastive_pairs(LABELS, 2, seed=1)
    assert contrastive_pairs(LABELS, 2, seed=1) != contrastive_pairs(LABELS, 2, seed=2)


def test_a_labels_only_row_gets_no_pairs():
    pairs = contrastive_pairs([0, 0, 1, 1, 2], pairs_per_row=2, seed=0)
    assert all(4 not in (i, j) or t == 0.0 for i, j, t in pairs)  # row 4 only as a negative
    assert all(i != 4 for i, _, _ in pairs)
    assert sum(t for _, _, t in pairs) == len(pairs) / 2


def test_pairs_need_two_labels_and_a_positive():
    with pytest.raises(SftlabError, match="at least 2 labels"):
        contrastive_pairs([1, 1, 1], 1, seed=0)
    with pytest.raises(SftlabError, match="no label has 2 training rows"):
        contrastive_pairs([0, 1, 2], 1, seed=0)
    with pytest.raises(SftlabError, match="pairs per row must be >= 1"):
        contrastive_pairs(LABELS, 0, seed=0)
