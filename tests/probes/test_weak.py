"""Probe results that do not beat the stronger baseline are flagged, never printed as ordinary results: accuracy not
above the majority class, or a control task below the majority class (which inflates selectivity)."""

import numpy as np

from shatterbox.probes import probe_arrays


def _arrays(signal: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.array(["a"] * 300 + ["b"] * 100 + ["c"] * 100)  # majority class 0.6
    words = np.array([f"w{i % 200}" for i in range(len(labels))])
    x = rng.normal(size=(len(labels), 8))
    x[:, 0] += signal * (labels == "b") - signal * (labels == "c")
    return {1: x}, labels, words


def test_a_layer_at_the_majority_class_is_flagged():
    x, labels, words = _arrays(signal=0.0)
    r = probe_arrays(x, labels, words, folds=3)
    s = r.layers[0]
    assert r.majority == 0.6 and s.accuracy - s.accuracy_ci <= r.majority
    assert s.flag.startswith("accuracy") and s.flag.endswith("is not above the majority class (0.600)")
    assert s.over_baseline == s.accuracy - max(s.control, r.majority)


def test_a_layer_that_reads_the_property_is_not_flagged_and_a_weak_control_task_is_noted():
    x, labels, words = _arrays(signal=6.0)
    s = probe_arrays(x, labels, words, folds=3).layers[0]
    assert s.accuracy > 0.9 and s.over_baseline > 0.2
    assert s.flag == ""  # it beats both baselines by far: not weak
    assert (s.note == "") == (s.control >= 0.6)  # a control task below the majority is said, with the margin over the majority
    if s.note:
        assert s.note.startswith("control below the majority class: ") and f"{s.over_baseline:+.3f} over the majority" in s.note


def test_a_margin_inside_its_interval_is_flagged():
    from shatterbox.probes import LayerScore, _judged

    s = _judged(LayerScore(1, 0.70, 0.01, 0.69, 0.01, 0.01, 0.02, [], []), 0.60)
    assert s.flag == "+0.010 ± 0.020 over the stronger of the control task and the majority class"
