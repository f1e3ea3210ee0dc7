"""Fixtures shared by the data tests."""
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_root():
    """The data folder named by RNNBP_DATA, when it holds the FSDD recordings (else the test is skipped)."""
    root = os.environ.get("RNNBP_DATA")
    if not root:
        pytest.skip("RNNBP_DATA is not set (e.g. RNNBP_DATA=../shared/data); the real FSDD recordings are needed")
    if not (Path(root) / "fsdd" / "recordings" / "0_george_0.wav").is_file():
        pytest.skip(f"RNNBP_DATA={root} holds no fsdd/recordings/*.wav")
    return root
