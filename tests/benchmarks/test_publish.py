"""``publish``: the static site from results directories, treated as untrusted input."""
from __future__ import annotations

import json
import pickle
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benchmarks.cli import EXIT_INPUT, EXIT_OK, main
from benchmarks.publish import render as H
from benchmarks.publish.site import MARKER, publish
from benchmarks.results import RECORD, Provenance
from publish_data import lookup, make_results, save_run

HOSTILE = "<script>alert(1)</script>"


class _Page(HTMLParser):
    """Links, images and the rows of each table (by id) of one page."""

    def __init__(self):
        super().__init__()
        self.refs, self.rows, self.scripts, self._table = [], {}, 0, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag in ("a", "link", "img") and (a.get("href") or a.get("src")):
            self.refs.append(a.get("href") or a.get("src"))
        if tag == "table":
            self._table = a.get("id")
        if tag == "tr" and self._table:
            self.rows[self._table] = self.rows.get(self._table, 0) + 1


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _two_machines(tmp_path):
    """Ours: fake_transfer smoke and nightly. Theirs: two more smoke seeds, one failed run with a
    hostile error text and git commit, one tampered record and one moved record."""
    ours = make_results(tmp_path / "ours")
    make_results(ours, profile="nightly", seeds=(0, 1))
    theirs = make_results(tmp_path / "theirs", seeds=(3, 4))
    save_run(theirs, "tgt-slippery-finetune-s5-x", status="failed", error=HOSTILE, seed=5,
             method="finetune", provenance=Provenance(config_hash="h", git_commit=HOSTILE,
                                                      packages={}, python="3", platform="x"))
    bad = theirs / "fake_transfer/smoke/runs/tgt-slippery-finetune-s3-smoke" / RECORD
    data = json.loads(bad.read_text())
    data["method"] = HOSTILE  # tampered: not a name, so not a valid record
    bad.write_text(json.dumps(data))
    moved = save_run(theirs, "tgt-slippery-scratch-s9-smoke", seed=9, is_baseline=True,
                     returns=[0.0] * 11)
    moved.rename(moved.with_name("renamed"))
    return ours, theirs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pub")
    ours, theirs = _two_machines(tmp)
    c = publish([ours, theirs], tmp / "site", reps=100, generated="2024-01-01 00:00 UTC",
                suite_lookup=lookup)
    return tmp, c


def test_index_has_one_row_per_suite_profile_and_links_resolve(built):
    tmp, _ = built
    site = tmp / "site"
    index = _parse(site / "index.html")
    assert index.rows["groups"] == 1 + 2  # header and fake_transfer/{nightly,smoke}
    assert index.rows["origins"] == 1 + 2
    pages = sorted(site.rglob("index.html"))
    assert [p.relative_to(site).as_posix() for p in pages] == [
        "fake_transfer/nightly/index.html", "fake_transfer/smoke/index.html", "index.html"]
    for page in pages:
        parsed = _parse(page)
        assert parsed.scripts == 0
        for ref in parsed.refs:
            assert not re.match(r"^(/|[a-z]+:)", ref) or ref == "data:,", ref  # relative only
            target = ref.split("#")[0]
            if target and ref != "data:,":
                assert (page.parent / target).is_file(), f"{page}: {ref} is missing"
    smoke = site / "fake_transfer/smoke"
    for name in ("scores.json", "scores.csv", "leaderboard.json",
                 "rliable_fake_transfer_smoke_aggregates.png"):
        assert (smoke / name).is_file()
    assert (site / "style.css").is_file() and (site / MARKER).is_file()


def test_hostile_text_is_escaped_everywhere(built):
    tmp, _ = built
    for page in (tmp / "site").rglob("*.html"):
        assert "<script" not in page.read_text(encoding="utf-8"), page
    smoke = (tmp / "site/fake_transfer/smoke/index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in smoke  # the failed run's error, as text


def test_hostile_task_and_method_names_render_as_text(built):
    tmp, _ = built
    report = json.loads((tmp / "site/fake_transfer/smoke/leaderboard.json").read_text())
    rep = report["reports"][0]
    for cell in rep["cells"]:
        cell["task"], cell["method"] = HOSTILE, HOSTILE + '"onload="x'
    rep["notes"] = [HOSTILE]
    html = H.render("group.html.j2", report=rep, root="../../", generated=HOSTILE, figures=[
        {"file": HOSTILE, "title": HOSTILE, "caption": HOSTILE}], downloads=[], provenance=[],
        rejected=[], origins=[HOSTILE], definitions=[HOSTILE], diag_names=[])
    assert "<script" not in html and 'onload="x' not in html
    assert html.count("&lt;script&gt;") >= 5


def test_bad_records_are_listed_as_rejected_and_left_out(built):
    tmp, c = built
    reasons = {r.path: r.reason for r in c.rejected}
    tampered = "fake_transfer/smoke/runs/tgt-slippery-finetune-s3-smoke"
    assert "field 'method'" in reasons[tampered]
    assert "does not match its folder" in reasons["fake_transfer/smoke/runs/renamed"]
    assert all("/ours/" not in r and str(tmp) not in r for r in reasons.values())  # no local paths
    index = (tmp / "site/index.html").read_text(encoding="utf-8")
    assert tampered in index and "does not match its folder" in index
    smoke = json.loads((tmp / "site/fake_transfer/smoke/scores.json").read_text())
    ids = {r["run_id"] for r in smoke["runs"]}
    assert "tgt-slippery-finetune-s3-smoke" not in ids and "renamed" not in ids


def test_a_second_machine_merges_into_the_same_page(built):
    tmp, c = built
    smoke = json.loads((tmp / "site/fake_transfer/smoke/leaderboard.json").read_text())["reports"][0]
    scratch = next(x for x in smoke["cells"] if x["method"] == "scratch")
    assert scratch["n_seeds"] == 5  # seeds 0-2 from ours, 3-4 from theirs
    origins = {c.origin_of[k] for k in c.origin_of if k[1] == "smoke"}
    assert origins == {"ours", "theirs"}
    page = (tmp / "site/fake_transfer/smoke/index.html").read_text(encoding="utf-8")
    assert "results directories: ours, theirs" in page


def test_same_run_twice_merges_once_and_a_conflicting_copy_is_rejected(tmp_path):
    a = make_results(tmp_path / "a", seeds=(0,))
    b = make_results(tmp_path / "b", seeds=(0,))  # the same runs, byte for byte
    c = publish([a, b], tmp_path / "site", reps=100, suite_lookup=lookup)
    assert len(c.groups[("fake_transfer", "smoke")]) == 2 and not c.rejected
    save_run(b, "tgt-slippery-scratch-s0-smoke", [9.0] * 11, is_baseline=True)  # other numbers
    c = publish([a, b], tmp_path / "site", reps=100, suite_lookup=lookup)
    assert [r.reason for r in c.rejected] == [
        "run id 'tgt-slippery-scratch-s0-smoke' of fake_transfer/smoke was already taken from a "
        "with different content"]


def test_pickles_and_checkpoints_are_never_opened(tmp_path, monkeypatch):
    root = make_results(tmp_path / "r", seeds=(0,))
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    run = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-smoke"
    for name in ("checkpoints/model.ckpt", "checkpoints/last.ckpt", "evil.pkl", "embedding.npz"):
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_bytes(pickle.dumps(Payload()))

    def boom(*a, **k):
        raise AssertionError("publish tried to unpickle or load a checkpoint")
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr("numpy.load", boom)
    if "torch" in sys.modules:
        monkeypatch.setattr(sys.modules["torch"], "load", boom)
    assert main(["publish", str(root), "--site", str(tmp_path / "site"), "--reps", "100"]) == 0
    assert not sentinel.exists()
    assert (tmp_path / "site/fake_transfer/smoke/index.html").is_file()


def test_bad_results_dir_or_site_is_exit_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep")
    root = make_results(tmp_path / "r", seeds=(0,))
    cases = [([str(tmp_path / "nope")], "no such folder"),
             ([str(tmp_path / "empty")], "no runs under"),
             ([str(root), "--site", str(tmp_path / "file")], "not a directory"),
             ([str(root), "--site", str(tmp_path / "mine")], "refusing to replace")]
    for args, why in cases:
        if "--site" not in args:
            args = args + ["--site", str(tmp_path / "site")]
        try:
            code = main(["publish", *args])
        except SystemExit as e:  # argparse's own check of --site
            code = e.code
        assert code == EXIT_INPUT
        err = capsys.readouterr().err
        assert "error: " in err and why in err, err
    assert not (tmp_path / "site").exists() and (tmp_path / "mine/notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "mine", "r"]  # no temp


def test_rebuild_replaces_atomically_and_a_failed_build_keeps_the_old_site(tmp_path, monkeypatch):
    root = make_results(tmp_path / "r", seeds=(0,))
    site = tmp_path / "out" / "site"
    publish([root], site, reps=100, generated="one", suite_lookup=lookup)
    first = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    publish([root], site, reps=100, generated="one", suite_lookup=lookup)
    again = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert again == first  # deterministic: only the generated line could differ
    monkeypatch.setattr(H, "stylesheet", lambda: (_ for _ in ()).throw(OSError(28, "disk full")))
    with pytest.raises(OSError):
        publish([root], site, reps=100, generated="two", suite_lookup=lookup)
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == first
    assert [p.name for p in site.parent.iterdir()] == ["site"]  # no temp folder left behind


def test_cli_publish_prints_a_summary(tmp_path, capsys):
    root = make_results(tmp_path / "r", seeds=(0,))
    assert main(["publish", str(root), "--site", str(tmp_path / "s"), "--reps", "100"]) == EXIT_OK
    assert "1 suite/profile pages, 2 runs, 0 files rejected" in capsys.readouterr().out


def test_every_page_states_its_definitions():
    text = " ".join(H.definitions())
    for needle in ("IQM", "optimality gap", "Performance profiles", "Probability of improvement",
                   "Sample efficiency", "Agarwal et al.", "AUC = mean evaluation return"):
        assert needle in text
    assert "``" not in text and "**" not in text


def test_the_cli_loads_no_site_or_plotting_code_until_publish_runs():
    import subprocess
    code = ("import sys, benchmarks.cli\n"
            "print(sorted(m for m in ('jinja2', 'matplotlib', 'torch', 'benchmarks.publish', "
            "'benchmarks.scores') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
