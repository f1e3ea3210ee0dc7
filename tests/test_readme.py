"""The README's Python snippets run as written, and its test command is the one CI runs."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_snippets_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README has no python snippets"
    monkeypatch.chdir(tmp_path)  # snippets may write files (checkpoints)
    namespace = {}  # later snippets continue earlier ones, as a reader would run them
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)


def test_ci_runs_the_readme_test_command():
    awk = r"/<!-- test-command -->/{f=1; next} f && /^```/{ if (g) exit; g=1; next } g {print}"
    command = subprocess.run(["awk", awk, str(ROOT / "README.md")], capture_output=True, text=True).stdout
    assert "pytest" in command and "pip install" in command
    assert awk in (ROOT / ".ci" / "run").read_text()
