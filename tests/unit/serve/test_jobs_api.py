"""The Jobs API client the audience jobs submit through (serve/jobs_api.py), and the status format
the expand job writes and the ingress reads (reco/expansion/job_status.py): no Ray, no server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reco.expansion import job_status
from serve.jobs_api import JobsApiError, RayJobsApi, ray_token


def test_ray_token_is_read_where_ray_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", " from-env ")
    assert ray_token() == "from-env"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    (tmp_path / "tok").write_text("from-file\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    assert ray_token() == "from-file"
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ray_token() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home")
    assert ray_token() == "from-home"


def test_the_client_goes_to_its_address_with_the_token_whatever_ray_address_says(monkeypatch):
    made = []

    class Client:
        def __init__(self, address, headers):
            made.append((address, headers, os.environ.get("RAY_ADDRESS")))

        def submit_job(self, **kwargs):
            raise RuntimeError("Request failed with status code 500: boom.")

        def get_job_info(self, submission_id):
            raise RuntimeError(f"Request failed with status code 404: Job {submission_id} does not exist.")

    monkeypatch.setattr("ray.job_submission.JobSubmissionClient", Client)
    monkeypatch.setattr("serve.jobs_api.SUBMIT_RETRY_S", 0.7)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "secret-token")
    api = RayJobsApi("http://head:8265/")
    assert api.info("audience-x") is None
    assert made == [("http://head:8265", {"Authorization": "Bearer secret-token"}, None)]
    assert os.environ["RAY_ADDRESS"] == "127.0.0.1:6379"
    with pytest.raises(JobsApiError, match="failed to submit the job: Request failed with status code 500") as e:
        api.submit("audience-x", "python -m ray_jobs.expand", {}, {})
    assert "secret-token" not in str(e.value)
    assert len(made) == 3, "tried again, each time with a new client (a restarted dashboard, a new token)"


def test_the_expand_jobs_status_module_round_trips(tmp_path: Path):
    target = str(tmp_path / "j" / "status.json")
    assert job_status.read_status(target) is None
    job_status.write_status(target, {"state": "running", "progress": 0.25})
    got = job_status.read_status(target)
    assert got["state"] == "running" and got["progress"] == 0.25 and got["updated_at"]
    with pytest.raises(ValueError, match="unknown audience job state"):
        job_status.write_status(target, {"state": "paused"})
