from __future__ import annotations

import os

import pytest
import torch

import cnnlab

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on CI's two cores: one thread each, and for the
    # processes they start, so that the two do not fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def meta_model(name: str, **kwargs) -> torch.nn.Module:
    """Build a model on the meta device: its shapes and counts, no memory and no init cost."""
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (Debian's, `make browser`), driven by Playwright; each
    test opens its own pages. Skipped where either is missing."""
    import shutil

    executable = next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (the test extras)")
    if executable is None:
        pytest.skip("needs Chromium (.ci/run installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


class OpenedPage:
    """A page of `browser` at `url`, loaded, with what its scripts raised and logged."""

    def __init__(self, browser, url: str, width: int = 1200, height: int = 1600) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        # the pages cnnlab writes log nothing: any console message is reported
        self.page.on("console", lambda message: self.errors.append(f"console {message.type}: {message.text}"))
        self.page.goto(url, wait_until="load")

    def body_data(self, name: str) -> str | None:
        return self.page.evaluate(f"document.body.dataset.{name}")

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def open_page(browser):
    """open_page(url) -> OpenedPage; every page is closed after the test."""
    pages: list[OpenedPage] = []

    def opener(url: str, **viewport) -> OpenedPage:
        pages.append(OpenedPage(browser, url, **viewport))
        return pages[-1]

    yield opener
    for page in pages:
        page.close()
