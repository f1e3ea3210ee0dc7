"""The README's Python snippets run as written, and its test command is the one CI runs."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_snippets_run(tmp_path):
    """In a fresh interpreter, so that no import done by another test can hide a missing one."""
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README has no python snippets"
    if importlib.util.find_spec("torch") is None:  # PyTorch snippets run only where torch is installed
        blocks = [b for b in blocks if "import torch" not in b]
    script = "\n".join(blocks)  # later snippets continue earlier ones, as a reader would run them
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ci_runs_the_readme_test_command():
    awk = r"/<!-- test-command -->/{f=1; next} f && /^```/{ if (g) exit; g=1; next } g {print}"
    command = subprocess.run(["awk", awk, str(ROOT / "README.md")], capture_output=True, text=True).stdout
    assert "pytest" in command and "pip install" in command
    assert awk in (ROOT / ".ci" / "run").read_text()
