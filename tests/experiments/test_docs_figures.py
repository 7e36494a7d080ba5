"""docs/experiments.md against the runs it reports: each section's table, claim and verdict are the
lines its committed JSON (docs/experiments/NAME.json) gives, and every number its prose quotes is a
figure of that JSON (a value, a percentage, a difference or a ratio of two of its figures, at the
precision printed) or a constant the section names (a paper's figure, a band edge)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from cnnlab.experiments.summary import section

DOCS = Path(__file__).resolve().parents[2] / "docs"
RUNS = DOCS / "experiments"

# The numbers a section's prose may quote that are not its run's figures: the papers', the seeds', the design's.
CONSTANTS = {
    "degradation": {"64,000", "2,604", "0.59"},  # He et al.'s iterations; the --long run's (its section below)
    # He et al.: warm-up rule, iterations, CIFAR-10's training images, Table 6; the bound; an earlier run's plain-56
    "degradation --long": {"64,000", "80", "0.01", "0.1", "90", "50,000", "6.97", "8.75", "93.2", "1,765"},
    "dropout-augmentation": {"0.5", "60", "2", "90"},  # AlexNet: 60 million parameters, 90 epochs
    "first-layer": {"0.125", "0.25", "0.22", "28", "63", "224", "96", "4", "2", "50"},
    "transfer": {"10", "50", "250", "0.3", "200"},
    "gap-vs-flatten": {"26"},  # the first design's flatten head, ahead by 26 points (its run is not kept)
    "overlapping-pooling": {"0.4"},  # Krizhevsky et al.: 0.4 points of top-1 on ImageNet
    # VGG Table 3; the first design's run (its table below); the second design's grid and its lowest rate's error
    "lrn": {"29.7", "29.6", "0.1", "1.7", "2", "19.32", "0.005", "83.09"},
}
# Sections with prose whose run is not committed yet (none now: every section's run was redone on the AMD
# EPYC with its JSON); a section leaves this list when its run's JSON is committed.
PENDING: set[str] = set()
SKIP_AFTER = ("table", "figure", "fig.", "sec.", "seed", "seeds", "section", "conv", "resnet", "plain")
NUMBER = re.compile(r"(?<![\w.\-/^±])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?!x\w|[a-wyzA-Z_\d]|[.,]\d|-\w|/\d)")


def sections(text: str) -> dict[str, str]:
    """Each `## NAME` and `### NAME` heading's own text, up to the next heading of any level (a
    subsection such as `### degradation --long` is read against its own run, not its parent's);
    "overview" the text before the first."""
    found = {"overview": text[:text.find("\n## ")]}
    headings = list(re.finditer(r"^#{2,3} (.+)$", text, re.M))
    for match, following in zip(headings, headings[1:] + [None]):
        found[match.group(1).strip()] = text[match.start():following.start() if following else len(text)]
    return found


def heading(record: dict) -> str:
    return record["experiment"] if record["tier"] == "standard" else f"{record['experiment']} --{record['tier']}"


def prose(body: str) -> str:
    """The "What the figures say." paragraphs of a section (each up to a blank line)."""
    return "\n".join(re.findall(r"\*\*What the figures say\.\*\*(.+?)(?:\n\n|\Z)", body, re.S))


def quoted(text: str) -> list[tuple[str, float, int]]:
    """The numbers the prose quotes: their text, value and decimals (not names like resnet-56 or 3x3)."""
    numbers = []
    for match in NUMBER.finditer(text):
        before = text[:match.start()].rstrip().split(" ")[-1].lower() if text[:match.start()].strip() else ""
        if before in SKIP_AFTER:
            continue
        number = match.group(1)
        numbers.append((number, float(number.replace(",", "")), len(number.split(".")[1]) if "." in number else 0))
    return numbers


def _values(node, into: list[float], *, history: bool = True) -> list[float]:
    if isinstance(node, dict):
        for key, value in node.items():
            if history or key != "history":
                _values(value, into, history=history)
    elif isinstance(node, list):
        for value in node:
            _values(value, into, history=history)
    elif isinstance(node, (int, float)) and not isinstance(node, bool) and node == node:
        into.append(float(node))
    elif isinstance(node, str):
        into += [float(n.replace(",", "")) for n in NUMBER.findall(node)]
    return into


def figures(record: dict) -> list[float]:
    """Every figure of the run and what the prose may make of two of them: percentages and points
    (x100), half-spreads (x50), differences in points and ratios."""
    every = _values({k: v for k, v in record.items() if k not in ("versions", "files")}, [])
    headline = sorted(set(_values({"rows": record["rows"], "figures": record["figures"]}, [], history=False)))
    pool = set(every) | {100 * v for v in every} | {50 * v for v in every}
    for a, b in itertools.permutations(headline, 2):
        pool.add(100 * (a - b))
        pool.add(a - b)
        if b:
            pool.add(a / b)
    return sorted(pool)


def found(value: float, decimals: int, pool: list[float]) -> bool:
    import bisect

    tolerance = 0.5 * 10 ** -decimals + 1e-9
    index = bisect.bisect_left(pool, value - tolerance)
    return index < len(pool) and pool[index] <= value + tolerance


RECORDS = sorted(RUNS.glob("*.json"))


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return sections((DOCS / "experiments.md").read_text())


@pytest.mark.parametrize("path", RECORDS, ids=[p.stem for p in RECORDS])
def test_the_section_prints_what_its_run_gave(path, docs):
    record = json.loads(path.read_text())
    body = docs[heading(record)]
    # the command, the budget, the table, the claim and the verdict: as summary.section writes them
    generated = "\n".join(section(record)[2:]).strip()
    assert generated in body, f"docs/experiments.md's {heading(record)} section is not its run's: {path.name}"
    if record["tier"] == "standard":  # the overview table at the top says the same verdict
        assert f"| [{record['experiment']}](#{record['experiment']}) | **{record['verdict']}** |" in docs["overview"]
    assert (RUNS / f"{path.stem}.png").is_file()


@pytest.mark.parametrize("path", RECORDS, ids=[p.stem for p in RECORDS])
def test_every_number_the_prose_quotes_is_a_figure_of_the_run(path, docs):
    record = json.loads(path.read_text())
    name = heading(record)
    text = prose(docs[name])
    assert text, f"{name}: no 'What the figures say.' paragraph"
    pool, constants = figures(record), CONSTANTS.get(name, set())
    missing = [number for number, value, decimals in quoted(text)
               if number not in constants and not found(value, decimals, pool)]
    assert not missing, f"{name}: the prose quotes {missing}, which {path.name} does not hold"


def test_every_section_with_figures_has_its_run(docs):
    with_prose = {name for name, body in docs.items() if prose(body) and not name.startswith("The ")}
    committed = {heading(json.loads(path.read_text())) for path in RECORDS}
    assert with_prose - committed == PENDING, "a section's JSON was committed (or lost): update PENDING"


def test_the_checks_can_fail():
    record = {"rows": [{"test_error": 0.1234, "train_error": 0.05}], "figures": {}, "budget": "", "claim": "", "reason": ""}
    pool = figures(record)
    assert found(12.34, 2, pool) and found(7.34, 2, pool) and found(12, 0, pool)  # a value, a difference in points
    assert not found(12.35, 2, pool) and not found(31, 0, pool)
    assert [n for n, _, _ in quoted("resnet-56 is 3x3/2 and 7x7, Table 3 and lr 0.01; 12.34% and 1,765 s, 4.0x")] == [
        "0.01", "12.34", "1,765", "4.0"]
