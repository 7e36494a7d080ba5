from __future__ import annotations

from cnnlab.cli import main
from tests.data.formats import write_idx_set


def test_data_info_embedded(capsys):
    assert main(["data", "info", "mnist-embedded"]) == 0
    out = capsys.readouterr().out
    assert "5,000 training images" in out and "1x28x28" in out and "10 classes" in out and "500" in out


def test_data_info_idx_folder(tmp_path, capsys):
    write_idx_set(tmp_path)
    assert main(["data", "info", f"fashion-mnist:{tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "30 training images, 20 test images" in out and "Ankle boot" in out


def test_data_show_writes_a_png(tmp_path, capsys):
    out_file = tmp_path / "grid.png"
    assert main(["data", "show", "mnist-embedded", "--out", str(out_file), "--augmented", "--count", "8"]) == 0
    assert out_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_file.stat().st_size > 1000
    code = main(["data", "show", "mnist-embedded", "--out", str(tmp_path / "missing" / "g.png")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_data_errors_are_one_line(tmp_path, capsys):
    code = main(["data", "info", f"mnist:{tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("cnnlab data: error:") and "Traceback" not in err
