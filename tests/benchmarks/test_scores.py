"""scores.json / scores.csv: built from records, read back, and checked by ``validate``."""
from __future__ import annotations

import json

import pytest

from benchmarks import scores as S
from benchmarks.cli import EXIT_INPUT, EXIT_OK, main
from benchmarks.report import build_report, write_report
from benchmarks.results import ResultError, load_results
from publish_data import FACTS, SHA, STEPS, lookup, make_results


@pytest.fixture()
def doc(tmp_path):
    results = load_results(make_results(tmp_path / "r"))
    return S.scores_document(results, [build_report(results, FACTS, reps=50)])


def _write(tmp_path, doc):
    return S.write_scores(tmp_path / "out", doc)


def test_scores_hold_every_run_with_hand_computed_metrics(doc):
    assert (doc["schema"], doc["schema_version"]) == ("lightning-wm-scores", 1)
    assert doc["groups"] == [{"suite": "fake_transfer", "profile": "smoke", "primary": "auc",
                              "final_fraction": 0.1,
                              "scale": {"slippery": {"random": 0.0, "reference": 1.0}}}]
    keys = [(r["method"], r["seed"]) for r in doc["runs"]]
    assert keys == sorted(keys) and len(keys) == 6  # sorted by suite/profile/task/method/seed
    run = next(r for r in doc["runs"] if (r["method"], r["seed"]) == ("finetune", 2))
    # a straight line from 0.4 to 1.4: AUC is its mean 0.9, final the mean at 900 and 1000
    assert run["metrics"]["auc"] == pytest.approx(0.9)
    assert run["metrics"]["final"] == pytest.approx(1.35)
    assert run["curve"]["env_steps"] == STEPS.tolist()
    assert run["provenance"] == {"config_hash": f"cfg-{run['run_id']}", "git_commit": "c0ffee",
                                 "model_sha256": SHA, "source_run_ids": []}
    assert run["baseline_run_id"] == "tgt-slippery-scratch-s2-smoke"


def test_scores_json_round_trips(tmp_path, doc):
    js, cs = _write(tmp_path, doc)
    back = S.read_scores(js).model_dump(mode="json", by_alias=True)
    assert back == doc
    # the CSV: one row per curve point of every run, after the header
    assert S.read_scores_csv(cs) == 6 * len(STEPS)
    first = cs.read_text().splitlines()[1].split(",")
    assert first[:7] == ["fake_transfer", "smoke", "target", "slippery", "finetune", "0",
                         "tgt-slippery-finetune-s0-smoke"]


def _refused(capsys, path, *needles):
    assert main(["validate", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    for needle in (str(path), *needles):
        assert str(needle) in err, err
    return err


def test_validate_accepts_good_scores_files(tmp_path, doc, capsys):
    js, cs = _write(tmp_path, doc)
    assert main(["validate", str(js)]) == EXIT_OK
    assert main(["validate", str(cs)]) == EXIT_OK
    assert "valid scores file (6 runs)" in capsys.readouterr().out


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(schema_version=2), "field 'schema_version': unsupported"),
    (lambda d: d.pop("groups"), "field 'groups'"),
    (lambda d: d["runs"][0].update(seed="zero"), "field 'runs.0.seed'"),
    (lambda d: d["runs"][1]["provenance"].pop("git_commit"), "field 'runs.1.provenance.git_commit'"),
    (lambda d: d["runs"][0]["metrics"].update(auc=float("nan")), "field 'runs.0.metrics.auc'"),
    (lambda d: d["runs"][0].update(method="<script>"), "field 'runs.0.method'"),
    (lambda d: d["runs"].append(dict(d["runs"][0])), "more than once"),
    (lambda d: d.update(extra=1), "field 'extra'"),
])
def test_validate_rejects_a_bad_scores_json_naming_file_and_field(tmp_path, doc, capsys,
                                                                  edit, field):
    js, _ = _write(tmp_path, doc)
    data = json.loads(js.read_text())
    edit(data)
    js.write_text(json.dumps(data))
    _refused(capsys, js, field)
    with pytest.raises(ResultError, match=field.split(":")[0]):
        S.read_scores(js)


def test_one_run_id_in_two_suites_is_two_runs(tmp_path, doc, capsys):
    """Run ids are unique per suite/profile only (pybullet_ftl and pybullet_mmtl smoke runs can
    share one), so a report over a whole results root must still write a valid file."""
    js, _ = _write(tmp_path, doc)
    data = json.loads(js.read_text())
    group = dict(data["groups"][0], suite="other")
    data["groups"].append(group)
    data["runs"].append(dict(data["runs"][0], suite="other", profile=group["profile"]))
    js.write_text(json.dumps(data))
    assert main(["validate", str(js)]) == EXIT_OK


def test_validate_rejects_a_bad_scores_csv_naming_line_and_column(tmp_path, doc, capsys):
    _, cs = _write(tmp_path, doc)
    lines = cs.read_text().splitlines()
    cells = lines[3].split(",")
    cells[-1] = "lots"
    cs.write_text("\n".join(lines[:3] + [",".join(cells)] + lines[4:]) + "\n")
    _refused(capsys, cs, "line 4", "column 'return'")
    cs.write_text("suite,profile\n")
    _refused(capsys, cs, "expected header")


def test_report_writes_score_files_and_validate_checks_them(tmp_path, capsys):
    root = make_results(tmp_path / "r")
    paths = write_report(root, suite_lookup=lookup, reps=50)
    assert root / "scores.json" in paths and root / "scores.csv" in paths
    assert len(S.read_scores(root / "scores.json").runs) == 6
    assert main(["validate", str(root)]) == EXIT_OK
    (root / "scores.json").write_text('{"schema_version": 1, "schema": "nope"}')
    _refused(capsys, root, "scores.json", "field 'schema'")
