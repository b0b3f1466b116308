"""Shared by the hostile-input tests (test_hostile_*.py): run a parser on one bad input under
a time limit and say what, if anything, is wrong with how it refused it.

A parser must refuse a bad input with an AjpqError whose message is one sentence: one line,
"<what is wrong>; <what to do>", naming the file it read. Anything else it raises (a
ValueError, KeyError, struct.error, zipfile or numpy error) is a leak.
"""

import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ajpq.errors import AjpqError

TIME_LIMIT_S = 2.0  # per input; the slowest real parse of one input here takes ~10 ms


class TookTooLong(Exception):
    """A parser ran past TIME_LIMIT_S on one input: it hangs or is far too slow."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise TookTooLong(f"took more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """What one call gave: its value, or the exception it raised."""

    value: Any = None
    error: Exception | None = None


def attempt(call: Callable[[], Any]) -> Outcome:
    try:
        with time_limit(TIME_LIMIT_S):
            return Outcome(value=call())
    except Exception as error:  # everything, so that a leak is reported, not re-raised
        return Outcome(error=error)


def refusal_problem(outcome: Outcome, names: str | None = None, hint: bool = True) -> str | None:
    """None when the call was refused with a one-sentence AjpqError (naming ``names`` and,
    with ``hint``, saying what to do after a '; '); otherwise what was wrong."""
    error = outcome.error
    if error is None:
        return f"accepted, returned {type(outcome.value).__name__}"
    if not isinstance(error, AjpqError):
        return f"leaked {type(error).__name__}: {str(error)[:200]}"
    message = str(error)
    if not message.strip() or "\n" in message or "\r" in message:
        return f"{type(error).__name__} is not one line: {message[:300]!r}"
    if hint and "; " not in message:
        return f"{type(error).__name__} does not say what to do: {message[:300]!r}"
    if names is not None and names not in message:
        return f"{type(error).__name__} does not name {names}: {message[:300]!r}"
    return None


def failure_report(problems: list[str]) -> str:
    return f"{len(problems)} bad inputs not refused in one sentence, e.g. {problems[:4]}"


def truncated(data: bytes, rng: random.Random) -> bytes:
    """A strict prefix of data (possibly empty)."""
    return data[: rng.randrange(len(data))]


def bit_flipped(data: bytes, rng: random.Random) -> bytes:
    """data with one random bit of one random byte inverted."""
    index = rng.randrange(len(data))
    return data[:index] + bytes([data[index] ^ (1 << rng.randrange(8))]) + data[index + 1 :]


def deeply_nested(depth: int = 100_000) -> bytes:
    """A JSON/TOML-like value nested ``depth`` arrays deep: recursion, not a syntax error."""
    return b"[" * depth + b"]" * depth
