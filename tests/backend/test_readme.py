"""The README's Python example runs as written (a doc that can rot is worse than none)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example builds into ./build/readme
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 4
    own: dict = {}  # "Bring your own model", right after the quick start
    exec(compile(blocks[0], str(README), "exec"), own)
    assert own["res"].metric == "top-1 accuracy" and len(own["res"].candidates) == 2
    assert own["res"].best.weight_bytes <= 1000
    images = own["val"].images[:16]
    assert (own["art"].run_host(images) == own["res"].best_graph.run(images)).all()
    namespace: dict = {}
    for block in blocks[1:]:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["outputs"].shape == (4, 10, 4, 8)
    assert namespace["art"].report["flash_bytes"] <= 1024 * 1024
    assert namespace["y"].tolist() == namespace["outputs"][0].tolist()
    assert namespace["m"].unit == "instructions" and namespace["m"].count > 0
    assert "(4, 10, 4, 8)" in capsys.readouterr().out
    res = namespace["res"]
    assert [c.episode for c in res.candidates] == [0, 1]
    assert all(c.weight_bytes <= 1500 for c in res.candidates)
    assert res.best.measured_latency is not None
    assert [r.kind for r in res.hardware][:4] == ["calibration"] * 4
