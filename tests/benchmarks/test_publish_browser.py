"""The built site in a real browser: headless Chromium opens every page from disk.

Needs the ``playwright`` package (the ``test`` extra) and ``/usr/bin/chromium`` (Debian's
``chromium`` package; ``.ci/run`` installs it where apt-get is available). Skipped, saying which
is missing, without them. Run alone with ``python -m pytest -m browser``.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from benchmarks.publish.preview import CHROMIUM, launch
from benchmarks.publish.site import publish
from publish_data import lookup, make_results, save_run

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    root = make_results(tmp / "results")
    make_results(root, profile="nightly", seeds=(0, 1))
    bad = save_run(root, "tgt-slippery-scratch-s7-smoke", [0.0] * 11, seed=7, is_baseline=True)
    (bad / "curve.csv").write_text("env_steps,return\n0,nan\n")  # rejected: not finite
    publish([root], tmp / "site", reps=100, generated="2024-01-01 00:00 UTC", suite_lookup=lookup)
    return tmp / "site"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def _visit(browser, url: str) -> dict:
    """Load ``url``; return its console errors, failed requests, broken images and links."""
    page = browser.new_page()
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    # lazy images load once scrolled to: bring each into view, then wait for them
    for img in page.query_selector_all("img"):
        img.scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    broken = [i.get_attribute("src") for i in page.query_selector_all("img")
              if not i.evaluate("i => i.complete && i.naturalWidth > 0")]
    links = [a.evaluate("a => a.href") for a in page.query_selector_all("a[href]")]
    rows = page.locator("#groups tbody tr").count()
    page.close()
    return {"errors": errors, "failed": failed, "broken": broken, "links": links, "rows": rows}


def test_every_page_loads_with_no_errors_and_nothing_missing(site, browser):
    seen, todo = set(), [(site / "index.html").resolve().as_uri()]
    index = None
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        got = _visit(browser, url)
        index = index or got
        assert got["errors"] == [], (url, got["errors"])
        assert got["failed"] == [], (url, got["failed"])
        assert got["broken"] == [], (url, got["broken"])
        for link in got["links"]:
            parsed = urlparse(link)
            assert parsed.scheme == "file", f"{url} links off the site: {link}"
            target = Path(unquote(parsed.path))
            assert target.is_file(), f"{url}: link to missing {target}"
            if target.suffix == ".html":
                todo.append(target.as_uri())
    assert index["rows"] == 2  # fake_transfer nightly and smoke
    assert len(seen) == 3


def test_index_table_lists_each_suite_profile_and_the_rejected_run(site, browser):
    page = browser.new_page()
    page.goto((site / "index.html").as_uri())
    cells = page.locator("#groups tbody tr td:nth-child(2)").all_inner_texts()
    assert cells == ["nightly", "smoke"]
    assert "tgt-slippery-scratch-s7-smoke" in page.locator("table.rejected").inner_text()
    page.close()
