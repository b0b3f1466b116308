"""docs/tasks.md's user-defined task runs as written and improves its own metric."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "tasks.md"


def test_the_documented_user_task_trains(capsys) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["result"].metric_name == "negative MAE"
    assert namespace["result"].metric > namespace["before"]
    assert capsys.readouterr().out.startswith("negative MAE: ")
