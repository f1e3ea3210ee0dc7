"""rnnbp.blas_threads limits the BLAS pool inside the block and restores it after."""
import pytest

import rnnbp

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads():
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_limits_inside_the_block_and_restores_after():
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library that threadpoolctl can see")
    with rnnbp.blas_threads(1):
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


@pytest.mark.parametrize("n", [None, 0])
def test_none_or_zero_leaves_the_pool_alone(n):
    before = _blas_threads()
    with rnnbp.blas_threads(n):
        assert _blas_threads() == before
