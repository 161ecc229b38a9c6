"""benchmarks/ablation/intervals.py: bootstrap intervals over a run's per-request rows."""

import random
from pathlib import Path

import pytest
from conftest import load_script

from editkit.evaluation.counterfact import harmonic_mean, summarise

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "ablation" / "intervals.py"


@pytest.fixture(scope="module")
def intervals():
    return load_script(PATH, "bench_intervals")


def rows(n, seed):
    rng = random.Random(seed)
    return [{"case_id": i, "efficacy_success": float(rng.random() < 0.95), "paraphrase_success": rng.choice([0.0, 0.5, 1.0]),
             "neighborhood_success": rng.choice([0.8, 0.9, 1.0])} for i in range(n)]


def test_point_is_the_runs_metric_and_the_interval_holds_it(intervals):
    rs = rows(300, 1)
    b = intervals.bootstrap(rs, samples=500, seed=0)
    point = summarise(rs)
    for k, (v, lo, hi) in b.items():
        assert v == pytest.approx(point[k]) and lo <= v <= hi and 0 <= lo < hi <= 1
    means = [point[k] for k in ("efficacy_success", "paraphrase_success", "neighborhood_success")]
    assert b["score"][0] == pytest.approx(harmonic_mean(means))


def test_more_requests_narrow_the_interval_and_constant_rows_have_none(intervals):
    width = lambda rs: (lambda v: v[2] - v[1])(intervals.bootstrap(rs, samples=400, seed=0)["score"])  # noqa: E731
    assert width(rows(1600, 2)) < 0.7 * width(rows(100, 2))
    same = [dict(rows(1, 3)[0], case_id=i) for i in range(50)]
    assert all(lo == pytest.approx(v, abs=1e-12) == hi for v, lo, hi in intervals.bootstrap(same, samples=100, seed=0).values())


def test_paired_difference_is_the_difference_of_scores_and_needs_the_same_requests(intervals):
    a, b = rows(400, 4), rows(400, 5)
    d, lo, hi = intervals.paired_difference(a, list(reversed(b)), samples=400, seed=0)  # matched by case_id, not order
    assert d == pytest.approx(summarise(a)["score"] - summarise(b)["score"]) and lo <= d <= hi
    d0, lo0, hi0 = intervals.paired_difference(a, a, samples=100, seed=0)
    assert d0 == lo0 == hi0 == 0.0  # a run against itself: no difference in any resample
    with pytest.raises(ValueError, match="same requests"):
        intervals.paired_difference(a, b[:-1], samples=10, seed=0)
