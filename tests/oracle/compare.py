"""Assertions shared by the oracle tests: item dicts from our reader vs items dumped from upstream."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def assert_items_equal(ours: Mapping[str, Any], theirs: Mapping[str, Any], where: str) -> None:
    """Same keys, and for every key the same value: dtype, shape and every element (camera pixels included)."""
    assert set(ours) == set(theirs), f"{where}: keys differ: only ours {sorted(set(ours) - set(theirs))}, only upstream {sorted(set(theirs) - set(ours))}"
    for key, want in theirs.items():
        got = ours[key]
        if isinstance(want, str):
            assert got == want, f"{where} '{key}': {got!r} != upstream {want!r}"
            continue
        got = np.asarray(got)
        assert got.dtype == want.dtype, f"{where} '{key}': dtype {got.dtype} != upstream {want.dtype}"
        assert got.shape == want.shape, f"{where} '{key}': shape {got.shape} != upstream {want.shape}"
        if not np.array_equal(got, want):
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            raise AssertionError(
                f"{where} '{key}': values differ from upstream in {int(np.count_nonzero(diff))} of {diff.size} "
                f"elements (max |diff| {diff.max():.6g})"
            )
