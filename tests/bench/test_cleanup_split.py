"""The split bench's shared DIS flows: a variant that changes how flow is completed starts from the very flows an
uncached shot computes, and each pair's DIS runs once for all the variants."""

import numpy as np

from generation.engine.cleanup import CleanupOptions, CleanupShot
from tests.bench.cleanup_split import _DisCache
from tests.generation.engine.test_cleanup import _pan_with_box


def test_variants_share_the_plates_dis_flows(monkeypatch):
    _, plates, mattes = _pan_with_box()
    plain = CleanupShot(plates, mattes, CleanupOptions(consistency=0.2))
    plain.flows()
    cache = _DisCache()
    calls = []

    def counted(shot, a8, b8):
        calls.append(1)
        return cache(shot, a8, b8)

    monkeypatch.setattr(CleanupShot, "_dis", counted)
    shots = [CleanupShot(plates, mattes, CleanupOptions(consistency=c)) for c in (0.05, 0.2)]
    for shot in shots:
        shot.flows()
    assert len(cache.flows) == 2 * (len(plates) - 1)  # each pair's two ways, once
    assert len(calls) == 2 * len(cache.flows)  # both variants asked; the second was served from the cache
    for a, b in zip(shots[1]._fwd[:-1], plain._fwd[:-1], strict=True):
        assert np.array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(shots[0]._fwd[:-1], shots[1]._fwd[:-1], strict=True))
