"""The README's Python example runs as written (a doc that can rot is worse than none)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example builds into ./build/readme
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert namespace["outputs"].shape == (4, 10, 4, 8)
    assert namespace["art"].report["flash_bytes"] <= 1024 * 1024
    assert capsys.readouterr().out.strip().endswith("(4, 10, 4, 8)")
