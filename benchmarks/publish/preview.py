"""Screenshot of a built site's index page in headless Chromium (``results/site-preview.png``).

    python -m benchmarks.publish.preview results --out results/site-preview.png

Builds the site of the given results directories in a temporary folder and renders its
``index.html`` from disk. Needs the ``playwright`` package (the ``test`` extra) and a Chromium
binary (Debian: ``apt-get install chromium``); playwright's own browser download is not used, so
nothing is fetched from the network.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
#: headless, no sandbox (containers run as root), and nothing that would reach the network
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def launch(playwright):
    """A Chromium browser from the system binary."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def screenshot(page_file: Path, out: Path, width: int = 1280) -> None:
    from playwright.sync_api import sync_playwright

    from benchmarks.results import atomic_write_bytes
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(Path(page_file).resolve().as_uri())
            atomic_write_bytes(out, page.screenshot(full_page=True))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.publish.preview",
                                 description="Build the site and screenshot its index page.")
    ap.add_argument("dirs", nargs="+", type=Path, metavar="RESULTS_DIR")
    ap.add_argument("--out", type=Path, default=Path("results/site-preview.png"))
    ap.add_argument("--reps", type=int, default=2000)
    args = ap.parse_args(argv)
    from benchmarks.publish.site import publish
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        # a fixed date: the preview changes only when the results or the site's look do
        publish(args.dirs, site, reps=args.reps, generated="(preview)")
        screenshot(site / "index.html", args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
