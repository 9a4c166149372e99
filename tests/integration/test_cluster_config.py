"""cluster.yaml passes the Ray cluster launcher's own normalisation and schema; the KubeRay
manifests name what KubeRay needs. Nothing here contacts a cloud."""

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_validates_through_the_launchers_normalisation(cluster):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cluster))
    validate_config(prepared)  # jsonschema against ray-schema.json plus the launcher's own checks
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_cluster_yaml_names_what_aws_requires(cluster):
    assert cluster["provider"]["type"] == "aws" and cluster["provider"]["region"]
    assert cluster["auth"]["ssh_user"]
    assert cluster["max_workers"] >= 1
    for name, node in cluster["available_node_types"].items():
        assert node["node_config"]["InstanceType"], name
    workers = [n for k, n in cluster["available_node_types"].items() if k != cluster["head_node_type"]]
    assert any(n["max_workers"] > n.get("min_workers", 0) for n in workers), "workers must autoscale"
    assert any("pip install" in c and "reco-ray" in c for c in cluster["setup_commands"]), "setup installs this package"


def test_a_broken_cluster_yaml_is_rejected(cluster):
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = copy.deepcopy(cluster)
    bad["head_node_type"] = "nosuch"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(prepare_config(bad))


@pytest.mark.parametrize("name, kind", [("rayjob.yaml", "RayJob"), ("rayservice.yaml", "RayService")])
def test_kuberay_manifests(name, kind):
    doc = yaml.safe_load((ROOT / "k8s" / name).read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == kind
    spec = doc["spec"]
    cluster_spec = spec.get("rayClusterSpec") or spec.get("rayClusterConfig")
    assert cluster_spec["headGroupSpec"]["template"]["spec"]["containers"]
    assert cluster_spec["workerGroupSpecs"][0]["maxReplicas"] > cluster_spec["workerGroupSpecs"][0]["minReplicas"]
    if kind == "RayJob":
        assert spec["entrypoint"].startswith("python -m ray_jobs.pipeline")
    else:
        apps = yaml.safe_load(spec["serveConfigV2"])["applications"]
        assert apps[0]["import_path"] == "serve.app:build_app"
