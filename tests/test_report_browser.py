"""report.html in a real browser: headless Chromium renders it and every embedded image decodes.

Runs in CI (which installs Debian's chromium); skipped only where /usr/bin/chromium is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.report import main

try:  # tests/ is a rootdir-relative folder, not a package, unless someone adds __init__.py
    from tests.report_fixtures import write_classification_run
except ImportError:
    from report_fixtures import write_classification_run

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep headless Chromium offline and quiet in a container (no sandbox, no GPU, no
# background fetches), so a page that needed the network would show it as broken images.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
# Injected into a copy of the page (the report itself carries no script): after load, record how
# many <img> decoded (naturalWidth > 0) in a data attribute that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
});
</script>"""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium not installed (CI installs Debian's chromium)"
)


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_classification_run(tmp_path_factory.mktemp("browser") / "resnet_tiny")
    assert main([str(run)]) == 0
    return run / "report"


def test_every_image_decodes_in_chromium(report: Path, tmp_path: Path) -> None:
    page = tmp_path / "probe.html"
    # Copied elsewhere on purpose: a self-contained page must not depend on files beside it.
    page.write_text((report / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    n_figures = len(list((report / "figures").glob("*.png")))
    res = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    match = re.search(r'data-images="(\d+)/(\d+)"', res.stdout)
    assert match, f"probe did not run; chromium stderr:\n{res.stderr[-2000:]}"
    assert match.group(1) == match.group(2) == str(n_figures)


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    page = tmp_path / "report.html"
    shutil.copy(report / "report.html", page)
    res = _chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--virtual-time-budget=5000",
        page.as_uri(),
    )
    assert shot.is_file(), f"no screenshot; chromium stderr:\n{res.stderr[-2000:]}"
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        px = np.asarray(im.convert("L"), dtype=float)
    assert px.std() > 15, "screenshot is (nearly) uniform: the page did not render"
    # The page's top shows text and the tables: a good share of pixels is not background.
    assert (px < 200).mean() > 0.02
