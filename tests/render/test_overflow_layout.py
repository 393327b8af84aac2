"""The status layout kept current one record at a time (overflow.Layout) against split(),
which lays out the whole status at once: after every change, the same level, the same
status in the Pipeline and the same shards, and the merge patch from the last one."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sco.render import overflow

_records = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"s": st.sampled_from(["queued", "running", "done", "error"])},
        optional={"t": st.integers(0, 99), "r": st.text("abc xyz", min_size=1, max_size=60)},
    ),
)
_changes = st.lists(
    st.lists(st.tuples(st.integers(0, 59), _records), min_size=1, max_size=6), max_size=25
)


@settings(max_examples=200, deadline=None)
@given(_changes, st.sampled_from([0, 1]))
def test_the_layout_agrees_with_split_through_random_changes(
    changes: list[list[tuple[int, dict[str, Any] | None]]], start: int
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(overflow, "PIPELINE_BUDGET", 1500)
        mp.setattr(overflow, "SHARD_NODES", 10)
        fixed = 300
        full: dict[str, Any] = {"phase": "Running", "message": "m" * 10, "nodes": {}}
        stored, _ = overflow.split(full, fixed, {"overflow": {"level": start}} if start else {})
        layout = overflow.Layout(full, fixed, stored)
        for batch in changes:
            nodes = dict(full["nodes"])
            for index, record in batch:
                if record is None:
                    nodes.pop(str(index), None)
                else:
                    nodes[str(index)] = record
            full = {**full, "nodes": nodes, "message": f"{len(nodes)} records"}
            want_inline, want_shards = overflow.split(full, fixed, stored)
            answer = layout.update(full, [str(i) for i, _ in batch], fixed)
            if answer is None:  # the level goes up: built again, as the store does
                assert overflow.level_of(want_inline) > layout.level
                layout = overflow.Layout(full, fixed, stored)
                inline, patch = layout.inline, overflow.merge_patch(stored, layout.inline)
            else:
                inline, patch, dirty = answer
                for k, records in want_shards.items():
                    if k in dirty or k not in overflow.shards_of(stored):
                        continue
                    assert records == layout.shards[k]  # unchanged ones: not rewritten
            assert inline == want_inline
            assert layout.shards == want_shards
            assert overflow.apply_patch(stored, patch) == want_inline
            stored = want_inline
