"""What an experiment found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """Table rows, the seeds' claim, and the verdict the figures give: "shown", "shown with a
    caveat" or "not shown", with `reason` saying which figures decide it."""

    name: str
    claim: str
    verdict: str
    reason: str
    rows: list[dict[str, Any]]
    figures: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    budget: str = ""

    @property
    def holds(self) -> bool:
        return self.verdict != "not shown"
