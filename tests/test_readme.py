"""The README's commands whose output it shows print that output (every line, whitespace at the
ends aside). Commands shown with "..." (elided output) or that need a run folder are not run here."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def shown_commands() -> list[tuple[str, list[str]]]:
    """(command, the lines the README shows after it) for each `$ cnnlab ...` line followed by output."""
    shown = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), re.S):
        lines = block.splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ cnnlab ") or line.endswith("\\"):
                continue
            output = []
            for later in lines[index + 1:]:
                if later.startswith("$ "):
                    break
                if not later.strip().startswith("#"):  # a comment carried on from the command's line
                    output.append(later)
            if output and not any(text.strip() == "..." for text in output):
                shown.append((line[2:].split("  #")[0].strip(), output))
    return shown


COMMANDS = shown_commands()


def test_the_readme_shows_output_for_these_commands():
    assert [command for command, _ in COMMANDS] == [
        "cnnlab models 'alexnet*'", "cnnlab show alexnet --depth 1", "cnnlab show resnet5",
        "cnnlab explore resnet50 --out resnet50.html",
        'cnnlab op conv --input "0 1 2; 3 4 5; 6 7 8" --kernel "0 1; 2 3"', "cnnlab draw resnet50",
        "cnnlab plot vgg16 --what params --out vgg16-params.png"]


@pytest.mark.parametrize("command, shown", COMMANDS, ids=[command for command, _ in COMMANDS])
def test_a_readme_command_prints_what_the_readme_shows(command, shown, tmp_path, monkeypatch, capsys):
    if command.startswith(("cnnlab draw", "cnnlab explore")) and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (make graphviz)")
    monkeypatch.chdir(tmp_path)  # the files a command writes land here
    try:
        main(shlex.split(command)[1:])
    except SystemExit:
        pass  # an error the README shows on purpose (status 2)
    captured = capsys.readouterr()
    printed = (captured.out + captured.err).rstrip().splitlines()
    assert [line.strip() for line in printed] == [line.strip() for line in shown]
