"""The quality ledger: one JSON line per finished measurement run, committed after each run.

A measurement matrix (configurations x images x seeds, hours of CPU each) does not fit in one sitting
on a 2-core machine. ``bench/quality.py`` therefore appends every finished run to
``bench/results/quality.jsonl`` (tracked by git), skips the runs the ledger already holds, and, with
``--commit``, commits the ledger after each run, so a stop loses at most the run in progress and the
matrix resumes in the next sitting. ``report`` and the README preset table read the ledger alone.

A row is keyed by ``(name, image, seed)``: ``name`` labels one configuration (implementation,
preset and overrides), so a changed configuration needs a new name. Each row also records what makes
a figure comparable or not: the project's commit, torch threads, the load average before and after,
and ``busy`` when the machine was not idle (load above :data:`IDLE_LOAD`) when the run started.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LEDGER = REPO / "bench" / "results" / "quality.jsonl"
IDLE_LOAD = 1.3  # 1-minute load average above which the machine is not idle enough to measure


def read(path: Path) -> list[dict[str, Any]]:
    """Every row of the ledger at ``path`` (none if it does not exist yet), in order."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["name"], row["image"], int(row["seed"])


def done(path: Path) -> set[tuple[str, str, int]]:
    """The ``(name, image, seed)`` keys the ledger already holds."""
    return {key(row) for row in read(path)}


def append(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one line, flushed and synced before returning (a kill loses no finished row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def commit(path: Path, message: str) -> None:
    """``git commit`` of the ledger file alone (nothing else staged is touched)."""
    subprocess.run(["git", "-C", str(REPO), "add", "--", str(path)], check=True)
    subprocess.run(["git", "-C", str(REPO), "commit", "-q", "-m", message, "--", str(path)], check=True)


def project_commit() -> str:
    """HEAD's short hash, with ``+dirty`` when the library or bench code differs from it."""
    head = (
        subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "singan_core", "bench/quality.py"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("+dirty" if dirty else "")


def load_gate(allow_busy: bool) -> tuple[list[float], bool]:
    """The load average now and whether the machine is busy; SystemExit when busy and not allowed."""
    load = list(os.getloadavg())
    busy = load[0] > IDLE_LOAD
    if busy and not allow_busy:
        raise SystemExit(
            f"load average {load[0]:.2f} is above {IDLE_LOAD}: measure on an idle machine "
            "(or pass --allow-busy to record the row marked busy)"
        )
    return load, busy


def select(rows: Iterable[dict[str, Any]], names: list[str] | None, include_busy: bool) -> list[dict[str, Any]]:
    """Rows of the given configuration ``names`` (all when None), busy ones only if ``include_busy``."""
    return [r for r in rows if (names is None or r["name"] in names) and (include_busy or not r.get("busy"))]
