"""The HTML report in a real headless Chromium: every chart laid out with a size, no errors, a screenshot.

Runs ``itsm-kpi demo`` into a temporary store (with the v2 tables the report reads), builds the report in both
languages, and opens it with ``chromium --headless --dump-dom`` after injecting a small probe script that
records, once the page has loaded, each chart's laid-out size, any error or ``console.error``, and every resource the page fetched.
Screenshots go to ``test-artifacts/``. Without Chromium the test is skipped, except under CI (env ``CI``),
where it fails: CI must install the Debian package ``chromium`` (and ``fonts-noto-cjk`` for the zh page).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.analyst.report import build_report
from pipeline.cli import main as cli_main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
WIDTH = 1280
#: ranking, four rate trends, response time trend, volume, SLA by priority, resolution SLA by client,
#: backlog by age, time in status per team
CHARTS = 11
#: overview, ranking, engineer KPIs, trends, SLA by priority, clients, backlog, time in status, breached tickets,
#: at risk, exemptions
PANELS = 11

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__errors.push('error: ' + (e.message || t.src || t.href || 'a resource failed'));
}, true);
(function () {
  var original = console.error;
  console.error = function () {
    window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
window.addEventListener('load', function () {
  var charts = Array.prototype.map.call(document.querySelectorAll('svg'), function (s) {
    var r = s.getBoundingClientRect();
    return {w: r.width, h: r.height, marks: s.querySelectorAll('rect, polyline, circle, line').length,
            cls: s.getAttribute('class')};
  });
  var probe = document.createElement('pre');
  probe.id = '__probe';
  probe.textContent = JSON.stringify({
    charts: charts, errors: window.__errors, panels: document.querySelectorAll('section.panel').length,
    resources: performance.getEntriesByType('resource').map(function (r) { return r.name; }),
    scrollWidth: document.documentElement.scrollWidth, scrollHeight: document.documentElement.scrollHeight,
    title: document.title
  });
  document.body.appendChild(probe);
});
</script>"""


def chromium_binary() -> str:
    """The Chromium to drive, or skip (fail under CI) when there is none."""
    for name in (
        os.environ.get("CHROMIUM"),
        "chromium",
        "chromium-browser",
        "google-chrome",
        "headless_shell",
    ):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    message = "Chromium not found (apt-get install -y chromium fonts-noto-cjk, or set CHROMIUM=/path)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must install Chromium: {message}", pytrace=False)
    pytest.skip(message)


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        "--disable-extensions",
        "--disable-sync",
        "--mute-audio",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real ``itsm-kpi demo`` run into a temporary store (the v2 tables included)."""

    store = tmp_path_factory.mktemp("demo") / "store"
    code = cli_main(["-q", "demo", "--store", str(store), "--as-of", "2026-10-15T08:00:00+08:00"])
    assert code == 0, "itsm-kpi demo failed"
    return store


def probe(binary: str, page: Path, tmp_path: Path) -> dict:
    """Load a copy of ``page`` carrying the probe script and return what the probe recorded."""
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(
        page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8"
    )
    done = run_chromium(
        binary,
        tmp_path / "profile-dom",
        f"--window-size={WIDTH},900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probed.as_uri(),
    )
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not report (chromium exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    result["stderr"] = done.stderr
    return result


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_renders_in_chromium(demo_store: Path, tmp_path: Path, lang: str) -> None:
    binary = chromium_binary()
    page = build_report(
        demo_store, None, "2026Q3", lang, tmp_path / f"report-{lang}.html", timezone="Asia/Shanghai"
    )
    seen = probe(binary, page, tmp_path)

    charts = [c for c in seen["charts"] if c["cls"] == "chart"]
    assert len(charts) == CHARTS, seen["charts"]
    assert seen["panels"] == PANELS
    for chart in charts:
        assert chart["w"] > 100 and chart["h"] > 50, f"a chart was not laid out: {chart}"
        assert chart["marks"] > 0, f"a chart drew nothing: {chart}"
    assert seen["errors"] == [], seen["errors"]
    assert seen["resources"] == [], f"the report fetched resources: {seen['resources']}"
    assert "Uncaught" not in seen["stderr"]
    assert seen["scrollWidth"] <= WIDTH, "the page is wider than the window"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{lang}.png"
    height = min(int(seen["scrollHeight"]), 12000)
    done = run_chromium(
        binary,
        tmp_path / "profile-shot",
        f"--window-size={WIDTH},{height}",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert shot.exists() and shot.stat().st_size > 10_000, f"no screenshot: {done.stderr[-2000:]}"
