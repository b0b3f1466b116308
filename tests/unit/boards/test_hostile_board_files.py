"""spec.load on 1,000+ generated bad board files: each is refused with one InvalidBoard
sentence that names the file and says what to do, never a TOMLDecodeError, UnicodeDecodeError,
AttributeError or RecursionError, never a hang.

Inputs come from the real files in hw/boards. Every one is built to be invalid: a cut before
the line of the file's last required field, a byte with its high bit flipped (these files are
ASCII, so that is never UTF-8), a control character, a deleted quote, '=' or bracket outside a
comment, a line written twice, random bytes, deep nesting, and tables whose required fields
are missing, of the wrong type or not one of the allowed values.
"""

import json
import random
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ajpq.boards.spec import BOARDS_DIR, COMMON, MCU, RESOURCES, list_ids, load
from tests.unit.hostile import attempt, deeply_nested, failure_report, refusal_problem

Board = dict[str, Any]
CONTROL = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])  # not TOML
NOT_STR = [5, 1.5, True, [], ["x"], {}, {"a": 1}]
NOT_INT = ["1", 1.5, True, -1, [], {}, float("inf"), float("nan")]
NOT_TABLE = [5, "x", [1], True]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf and nan are TOML too
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (no character outside the BMP here)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"


def toml_text(board: Board) -> str:
    """board as TOML: its plain fields, then one [table] per table."""
    lines = [f"{key} = {toml_value(v)}" for key, v in board.items() if not isinstance(v, dict)]
    for key, table in board.items():
        if isinstance(table, dict):
            lines += [f"[{key}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def required(board: Board) -> list[tuple[str, ...]]:
    """The required fields of this kind of board, as paths into its tables."""
    fields = [(key,) for key in COMMON]
    if board["kind"] == "mcu":
        return fields + [(key,) for key in MCU] + [("flash", "methods")]
    return fields + [("resources", key) for key in RESOURCES]


def wrong_table(board: Board, rng: random.Random) -> Board:
    *tables, key = rng.choice(required(board))
    table = board[tables[0]] if tables else board
    is_int = (COMMON | MCU).get(key) is int or tables == ["resources"]
    changes: list[Callable[[], Any]] = [
        lambda: table.pop(key),
        lambda: table.update({key: rng.choice(NOT_INT if is_int else NOT_STR)}),
        lambda: board.update(id=rng.choice(["", "x\ny", board["id"] + " ", board["id"].upper()])),
        lambda: board.update(kind=rng.choice(["cpu", "MCU", "", "gpu"])),
        lambda: board.update({rng.choice(["flash", "serial", "resources"]): rng.choice(NOT_TABLE)}),
    ]
    if board["kind"] == "mcu":
        changes += [
            lambda: board.update(timer=rng.choice(["rtc", "DWT", "systick"])),
            lambda: board["flash"].update(methods=rng.choice([[], "qemu", 5, ["jtag"], [1]])),
        ]
    else:
        changes.append(lambda: board.pop("resources"))
    rng.choice(changes)()
    return board


def last_required_line(text: str, board: Board) -> int:
    """The offset of the line that defines the last of the board's required fields."""
    starts = []
    for *_, key in required(board):
        match = re.search(rf"^{key}\s*=", text, re.MULTILINE)
        assert match, key
        starts.append(match.start())
    return max(starts)


def syntax_broken(text: str, rng: random.Random) -> str:
    """text without one quote, '=' or bracket outside a comment."""
    code = [line.split("#")[0] for line in text.splitlines(keepends=True)]
    offsets, start = [], 0
    for line, full in zip(code, text.splitlines(keepends=True), strict=True):
        offsets += [start + i for i, char in enumerate(line) if char in '"=[]']
        start += len(full)
    index = rng.choice(offsets)
    return text[:index] + text[index + 1 :]


def line_twice(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    index = rng.choice([i for i, line in enumerate(lines) if line.strip()[:1] not in ("", "#")])
    return "".join(lines[: index + 1] + [lines[index]] + lines[index + 1 :])


def bad_files(rng: random.Random) -> Iterator[tuple[str, str, bytes]]:
    """(kind, board id, file content) for every bad board file."""
    boards = {board_id: (BOARDS_DIR / f"{board_id}.toml").read_text() for board_id in list_ids()}
    ids = sorted(boards)
    for _ in range(1100):
        board_id = rng.choice(ids)
        text = boards[board_id]
        data = text.encode()
        kind = rng.choice(["truncated", "high bit", "control", "syntax", "twice", "table"])
        if kind == "truncated":
            content = data[: rng.randrange(last_required_line(text, tomllib.loads(text)) + 1)]
        elif kind == "high bit":
            index = rng.randrange(len(data))
            content = data[:index] + bytes([data[index] | 0x80]) + data[index + 1 :]
        elif kind == "control":
            index = rng.randrange(len(data) + 1)
            content = data[:index] + bytes([rng.choice(CONTROL)]) + data[index:]
        elif kind == "syntax":
            content = syntax_broken(text, rng).encode()
        elif kind == "twice":
            content = line_twice(text, rng).encode()
        else:
            content = toml_text(wrong_table(tomllib.loads(text), rng)).encode()
        yield kind, board_id, content
    for _ in range(100):
        yield "random bytes", rng.choice(ids), rng.randbytes(rng.randrange(1000))
    for depth in (1000, 100_000):
        yield "deeply nested", ids[0], b"id = " + deeply_nested(depth)
        yield "deeply nested", ids[0], b"a = " + b"{b = " * depth + b"1" + b"}" * depth


def test_bad_board_files_are_refused_in_one_sentence(tmp_path: Path) -> None:
    problems: list[str] = []
    tried: Counter[str] = Counter()
    for kind, board_id, content in bad_files(random.Random(2024)):
        path = tmp_path / f"{board_id}.toml"  # so that only the content can be wrong
        path.write_bytes(content)
        if problem := refusal_problem(attempt(lambda path=path: load(path)), str(path)):
            problems.append(f"{kind}: {problem}")
        tried[kind] += 1
    assert not problems, failure_report(problems)
    assert sum(tried.values()) == 1204
    assert len(tried) == 8 and min(tried.values()) == 4, tried


def test_the_generators_start_from_files_that_load(tmp_path: Path) -> None:
    """Each real board file, and toml_text of its table, loads: the mutation is the fault."""
    for board_id in list_ids():
        board = tomllib.loads((BOARDS_DIR / f"{board_id}.toml").read_text())
        assert tomllib.loads(toml_text(board)) == board
        (tmp_path / f"{board_id}.toml").write_text(toml_text(board))
        assert (
            load(tmp_path / f"{board_id}.toml").to_dict()
            == load(BOARDS_DIR / f"{board_id}.toml").to_dict()
        )


def test_a_missing_or_unreadable_file_is_one_sentence(tmp_path: Path) -> None:
    for path in (tmp_path / "none.toml", tmp_path):
        problem = refusal_problem(attempt(lambda path=path: load(path)), str(path))
        assert problem is None
