"""Writes a benchmark's figures into docs/benchmarks.md, in a section of its own.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; a
re-run replaces its section and leaves the others alone.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shlex
import sys
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nEach section is written by the script it names; re-run it to update.\n"


def machine() -> str:
    """One line naming this machine: CPU model, cores, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def command() -> str:
    """The command line that ran the benchmark, with paths relative to the repository."""
    root = str(BENCHMARKS_MD.parent.parent) + os.sep
    args = [a.replace(root, "") for a in sys.argv]
    script = Path(args[0])
    if script.parent.name == "bench" and script.suffix == ".py":  # run as `python -m bench.X`
        args[0:1] = ["-m", f"bench.{script.stem}"]
    return "python " + " ".join(shlex.quote(a) for a in args)


def write_section(name: str, title: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section NAME with TITLE, the machine, date, command and BODY."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"- machine: {machine()}\n- date: {stamp}\n- command: `{command()}`\n\n"
        f"{body.strip()}\n<!-- /bench:{name} -->"
    )
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
