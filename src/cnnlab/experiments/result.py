"""What an experiment found: its verdict, table and figures, shown in a notebook as they are in
docs/experiments.md (`Result.from_json` reads back the OUT/NAME.json an experiment wrote)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab import rendering
from cnnlab.errors import CnnlabError
from cnnlab.experiments.core import NOT_LEARNED


@dataclass
class Result:
    """Table rows, the seeds' claim, and the verdict the figures give: "shown", "shown with a
    caveat", "not decided at this budget" or "not shown", with `reason` saying which figures decide
    it and `open` naming the parts of the claim the figures did not show (empty when shown)."""

    name: str
    claim: str
    verdict: str
    reason: str
    rows: list[dict[str, Any]]
    figures: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    budget: str = ""
    open: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.verdict in ("shown", "shown with a caveat")

    @classmethod
    def from_json(cls, path: str | Path) -> "Result":
        """The result an experiment wrote to OUT/NAME.json."""
        path = Path(path)
        try:
            record = json.loads(path.read_text())
            return cls(record["experiment"], record["claim"], record["verdict"], record["reason"], record["rows"],
                       record.get("figures", {}), record.get("files", []), record.get("budget", ""),
                       record.get("open", []))
        except FileNotFoundError:
            raise CnnlabError(f"{path} does not exist; run the experiment (cnnlab experiment NAME) first") from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise CnnlabError(f"{path} is not an experiment's result ({error}); it was edited or is from elsewhere") from None

    def __repr__(self) -> str:
        return f"<Result {self.name}: {self.verdict}: {self.reason}>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return rendering.mimebundle(repr(self), self.to_html())

    def to_html(self) -> str:
        """The verdict, the claim and the budget, the figures' sentence, the table, the pictures."""
        parts = [rendering.facts([("claim", self.claim), ("verdict", self.verdict), ("budget", self.budget)]
                                 + [("open", "; ".join(self.open))] * bool(self.open)),
                 rendering.notes([self.reason])]
        if self.rows:
            columns = list(dict.fromkeys(key for row in self.rows for key in row))
            parts.append(rendering.table(columns, [[_cell_text(column, row.get(column)) for column in columns]
                                                   for row in self.rows], text_columns=1))
        for file in self.files:
            picture = Path(file)
            if picture.suffix == ".png" and picture.is_file():
                parts.append(rendering.image(picture.read_bytes(), picture.name, max_width_px=900))
        return rendering.frame(*parts, title=f"{self.name}: {self.verdict}")


def open_parts(result: Result | dict) -> list[str]:
    """The parts of the claim that remain open: none when shown; the whole claim when an arm did not
    learn (nothing is decided); else those the experiment named (the whole claim if it named none)."""
    if isinstance(result, Result):
        verdict, reason, named = result.verdict, result.reason, result.open
    else:
        verdict, reason, named = result["verdict"], result.get("reason", ""), result.get("open") or []
    if verdict == "shown":
        return []
    if NOT_LEARNED in reason:
        return ["the whole claim (an arm did not learn)"]
    return list(named) or ["the whole claim"]


def _cell_text(column: str, value) -> str:
    """A figure as the docs print it: errors and accuracies (fractions) in percent."""
    if value is None:
        return ""
    if isinstance(value, float) and any(word in column for word in ("error", "top1", "accuracy")) and 0 <= value <= 1:
        return f"{100 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
