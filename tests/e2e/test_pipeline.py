"""The whole pipeline, as a user runs it: the pipeline command on a tiny config."""

import subprocess
import sys

import pytest

from reco import artifacts
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


def test_pipeline_end_to_end(tiny_run):
    run_dir, out = tiny_run
    assert "hit@10" in out and "popularity" in out and run_dir in out
    # the closing summary names the expansion's headline and the ranker's test figures, and comes last
    assert "expansion" in out and "in the list's community" in out and ", vs random" in out
    assert "ranking   deepfm" in out and "AUC" in out
    assert out.rstrip().splitlines()[-1].startswith("  reports ")
    run = RunDir(run_dir)
    summary = run.read_json(artifacts.metrics("pipeline"))
    ev = summary["evaluation"]["validation"]
    # planted communities: the embedding beats popularity by a wide margin
    assert ev["starspace"]["hit@10"] > ev["popularity"]["hit@10"] + 0.1
    for rel in (
        artifacts.USER_EMBEDDINGS,
        artifacts.TOPIC_EMBEDDINGS,
        artifacts.index("users"),
        artifacts.index("topics"),
        artifacts.STARSPACE_MODEL,
        artifacts.report("embeddings.md"),
        artifacts.report("training_curve.png"),
        artifacts.report("expansion.md"),
        artifacts.report("expansion_truth.png"),
        artifacts.report("expansion_recall.png"),
    ):
        run.artifact(rel)  # present and matching its checksum
    # on planted communities the expansion report leads with the community share, then explains recall
    report = run.read_bytes(artifacts.report("expansion.md")).decode()
    assert report.index("true members") < report.index("expansion_truth.png") < report.index("expansion_recall.png")
    assert "**truthP**" in report and "near zero" in report
    assert run.read_bytes(artifacts.report("training_curve.png"))[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "configs/nope.yaml"], "config file not found"),
        (["--config", "configs/tiny.yaml", "--set", "embedding.dimm=3"], "embedding.dimm: unknown key"),
        (
            ["--config", "configs/tiny.yaml", "--set", "data.format=movielens", "--set", "data.path=/no/such/u.data"],
            "input not found",
        ),
    ],
)
def test_cli_errors_are_one_line(args, message, tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "ray_jobs.ingest", *args, "--set", f"run_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    assert "Traceback" not in p.stderr
