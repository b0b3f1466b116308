"""Build and run the libFuzzer targets of the firmware sources (clang, ASan + UBSan).

    .venv/bin/python -m tests.fuzz.run --runs 1000000          # what `make fuzz` does
    .venv/bin/python -m tests.fuzz.run --seconds 30 fuzz_cobs  # one target, a time budget

Each target is built into build/fuzz/ and run on its seeds (tests/fuzz/corpus/<target>/,
checked in, regression inputs included) plus the corpus it grew in earlier runs
(build/fuzz/corpus/<target>/, not checked in). A sanitizer report or a broken property
stops the run; the input that did it is written to build/fuzz/crashes/<target>/ and the
command exits 1 naming it. Rebuild the seeds with ``python -m tests.fuzz.make_corpus``.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ajpq.errors import ToolchainMissing

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "fuzz"
FIRMWARE = ROOT / "firmware"
BUILD = ROOT / "build" / "fuzz"
FLAGS = ["-g", "-O1", "-std=c99", "-Wall", "-Wextra", "-Werror"]
SANITIZE = ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]
INCLUDES = [HERE / "stub", FIRMWARE / "include", FIRMWARE / "proto", FIRMWARE / "runtime"]
PROTO = [FIRMWARE / "proto" / f"ajpq_{name}.c" for name in ("cobs", "crc", "frame")]
SERVER = [*PROTO, FIRMWARE / "proto" / "ajpq_text.c", FIRMWARE / "runtime" / "ajpq_verify.c"]
HUFFMAN = [FIRMWARE / "runtime" / "ajpq_huffman.c"]


@dataclass(frozen=True)
class Target:
    """One fuzz target: its harness, the firmware sources it links, its defines."""

    harness: str
    sources: tuple[Path, ...]
    defines: tuple[str, ...] = ()


TARGETS = {
    "fuzz_server": Target("fuzz_server.c", (*SERVER, *HUFFMAN)),
    "fuzz_text": Target("fuzz_server.c", (*SERVER, *HUFFMAN), ("AJPQ_FUZZ_TEXT",)),
    "fuzz_cobs": Target("fuzz_cobs.c", tuple(PROTO)),
    "fuzz_huffman_stream": Target("fuzz_huffman_stream.c", tuple(HUFFMAN)),
    "fuzz_huffman_table": Target("fuzz_huffman_table.c", tuple(HUFFMAN)),
}


@dataclass
class Result:
    target: str
    executions: int
    seconds: float
    crash: str | None  # the reproducer, when the target failed


def clang() -> str:
    path = shutil.which("clang")
    if path is None:
        raise ToolchainMissing(
            "clang is missing; run `make setup` as root (it installs Debian's clang)"
        )
    return path


def build(name: str, out_dir: Path = BUILD) -> Path:
    """The target's executable, built with the sanitizers."""
    target = TARGETS[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / name
    command = [
        clang(),
        *FLAGS,
        *SANITIZE,
        *(f"-D{define}" for define in target.defines),
        *(f"-I{folder}" for folder in INCLUDES),
        str(HERE / target.harness),
        *map(str, target.sources),
        "-o",
        str(binary),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolchainMissing(f"clang could not build {name}: {result.stderr.strip()[:400]}")
    return binary


def run(
    name: str,
    runs: int | None = None,
    seconds: int | None = None,
    out_dir: Path = BUILD,
    seeds: Path | None = None,
) -> Result:
    """Fuzz one target for ``runs`` executions or ``seconds``, from ``seeds`` (its checked-in
    corpus by default); never raises on a crash."""
    binary = build(name, out_dir)
    corpus, crashes = out_dir / "corpus" / name, out_dir / "crashes" / name
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    budget = [f"-runs={runs}"] if runs is not None else [f"-max_total_time={seconds}"]
    command = [
        str(binary),
        *budget,
        "-print_final_stats=1",
        "-timeout=25",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={crashes}/",
        str(corpus),
        str(seeds or HERE / "corpus" / name),
    ]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    log = result.stdout + result.stderr
    executed = re.search(r"stat::number_of_executed_units: (\d+)", log)
    crash = re.search(r"Test unit written to (\S+)", log)
    if result.returncode != 0 and crash is None:
        crash = re.search(r"(\S*crash-\S+)", log)
    failed = result.returncode != 0
    return Result(
        name,
        int(executed.group(1)) if executed else 0,
        round(elapsed, 1),
        (crash.group(1) if crash else f"(no reproducer; exit {result.returncode})")
        if failed
        else None,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Fuzz the firmware sources with libFuzzer.")
    parser.add_argument("targets", nargs="*", help=f"any of {', '.join(TARGETS)} (default all)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int, help="executions per target")
    budget.add_argument("--seconds", type=int, help="seconds per target")
    arguments = parser.parse_args()
    unknown = sorted(set(arguments.targets) - set(TARGETS))
    if unknown:
        parser.error(f"no fuzz target {', '.join(unknown)}; the targets are {', '.join(TARGETS)}")
    runs = arguments.runs if arguments.runs or arguments.seconds else 1_000_000
    for name in arguments.targets or TARGETS:
        print(f"fuzzing {name} ...", file=sys.stderr, flush=True)
        result = run(name, runs, arguments.seconds)
        print(json.dumps(asdict(result)), flush=True)
        if result.crash is not None:
            print(f"{name} failed: reproduce with {BUILD / name} {result.crash}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
