"""Training-curve summaries from a run folder's `<stage>/log.jsonl` (training/loop.py), for
the model card: per stage, steps, seconds, and each loss averaged over the first and last
`window` logged steps.

    python -m stylecast.training.curves runs/saas-small
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def read_log(path: str | Path) -> list[dict]:
    """The logged records by step; a resumed run re-logs the steps after its checkpoint,
    and the later record of a step wins."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return sorted({r["step"]: r for r in records}.values(), key=lambda r: r["step"])


def summarize(run_dir: str | Path, window: int = 5) -> dict[str, dict]:
    """{stage: {"steps", "seconds", "losses": {name: (first, last)}}} for every stage folder
    with a log, in the order the stages ran (by the log's modification time)."""
    out: dict[str, dict] = {}
    logs = sorted(Path(run_dir).glob("*/log.jsonl"), key=lambda p: p.stat().st_mtime)
    for path in logs:
        records = read_log(path)
        if not records:
            continue
        names = [k for k in records[-1] if k not in ("step", "seconds")]
        first, last = records[:window], records[-window:]
        out[path.parent.name] = {
            "steps": records[-1]["step"],
            "seconds": records[-1]["seconds"],
            "losses": {
                n: (
                    float(np.mean([r[n] for r in first if n in r])),
                    float(np.mean([r[n] for r in last if n in r])),
                )
                for n in names
            },
        }
    return out


def markdown(summary: dict[str, dict]) -> str:
    lines = ["| stage | steps | wall time | losses: first → last (mean of 5 logged steps) |",
             "|---|---|---|---|"]  # fmt: skip
    for stage, s in summary.items():
        losses = ", ".join(f"{n} {a:.4g} → {b:.4g}" for n, (a, b) in s["losses"].items())
        lines.append(f"| {stage} | {s['steps']} | {s['seconds'] / 60:.1f} min | {losses} |")
    return "\n".join(lines)


if __name__ == "__main__":
    for run in sys.argv[1:]:
        print(f"{run}\n\n{markdown(summarize(run))}\n")
