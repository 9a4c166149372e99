"""The cluster files can run what they are given, read without a cluster or Ray.

- k8s/rayjob.yaml: its worker group, autoscaled to maxReplicas, holds every stage of the pipeline
  run by its entrypoint's config (loaded by reco.config.load_config, defaults included), each Train
  worker or actor in one pod and a pod left for Ray Data beside the workers it feeds.
- k8s/rayservice.yaml: every Serve deployment asks for CPUs and memory and autoscales; all of them
  at max_replicas fit the worker group at maxReplicas; the HAProxy ingress is on in every container;
  Serve binds every interface; deployments and args are serve/config.composed.yaml's; the API keys
  file the args name is on a Secret volume mounted in every container.
- serve/config.composed.yaml binds every interface; cluster.yaml (the launcher) starts every node
  with token authentication and HAProxy and holds the pipeline at max_workers.
- The Dockerfile's base image pins pyproject.toml's Ray and Python; the manifests run one image.

Each check returns the problems it finds, so a failure names every one; the last tests break the
files on purpose to show the checks notice.
"""

from __future__ import annotations

import ast
import copy
import math
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reco.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
GiB = 2**30
# Ray keeps this share of a node's memory for the object store unless object-store-memory says otherwise.
OBJECT_STORE_SHARE = 0.3
HAPROXY_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1"}


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- what the pipeline asks for -----------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """``count`` Ray tasks, actors or Train workers of ``cpus`` CPUs (and ``memory`` bytes) each."""

    what: str
    count: int
    cpus: float
    memory: float = 0.0


@dataclass(frozen=True)
class Phase:
    """Asks that hold resources at the same time; ``fed_by_data``: Ray Data reads beside them."""

    asks: tuple[Ask, ...]
    fed_by_data: bool = False


def pipeline_phases(cfg: Config) -> dict[str, list[Phase]]:
    """What each step of ray_jobs.pipeline asks Ray for, phase by phase, from the config fields its
    module passes to ScalingConfig / ActorPoolStrategy / num_cpus (Ray Data tasks take 1 CPU)."""
    emb, ex, job, proto, rank = (
        cfg.embedding,
        cfg.export,
        cfg.expansion.job,
        cfg.expansion.protocol,
        cfg.ranking.train,
    )
    return {
        "ingest": [Phase((Ask("ingest: a Ray Data task", 1, 1.0),))],
        "train_embeddings": [
            Phase((Ask("embedding: Ray Train workers", emb.num_workers, emb.cpus_per_worker),), fed_by_data=True)
        ],
        "export_embeddings": [Phase((Ask("export: actors", ex.actors, ex.cpus_per_actor),), fed_by_data=True)],
        "build_index": [],  # 1-CPU Ray tasks for a sharded IVF build, no reserved workers
        "expand": [
            Phase((Ask("expansion.job: actors", job.actors, job.cpus_per_actor),), fed_by_data=True),
            # the ensemble path instead (several representations): the ALS fit, then one actor pool over the lists
            Phase((Ask("expand: the ALS fit, a Ray task", 1, 1.0),)),
            Phase((Ask("expansion.job: actors (ensemble path)", job.actors, job.cpus_per_actor),), fed_by_data=True),
        ],
        "evaluate": [
            Phase((Ask("evaluate (held-out): export actors", ex.actors, ex.cpus_per_actor),), fed_by_data=True),
            Phase((Ask("expansion.protocol: actors", proto.actors, proto.cpus_per_actor),), fed_by_data=True),
        ],
        "train_ranker": [
            Phase((Ask("ranking.train: Ray Train workers", rank.num_workers, rank.cpus_per_worker),), fed_by_data=True)
        ],
    }


def pipeline_steps() -> list[str]:
    """The step names of ray_jobs/pipeline.py's STEPS, read from its source."""
    tree = ast.parse((ROOT / "ray_jobs" / "pipeline.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "STEPS" for t in node.targets):
            return [ast.literal_eval(item.elts[0]) for item in node.value.elts]
    raise AssertionError("ray_jobs/pipeline.py has no STEPS")


def resource_sites(step: str) -> int:
    """ScalingConfig and ActorPoolStrategy calls in a step's module and the ray_jobs modules it imports."""
    seen: set[str] = set()
    todo = [step]
    count = 0
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((ROOT / "ray_jobs" / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ray_jobs."):
                todo.append(node.module.removeprefix("ray_jobs."))
            elif isinstance(node, ast.Call):
                callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                count += callee in ("ScalingConfig", "ActorPoolStrategy")
    return count


def job_config(rayjob: dict, dockerfile: str) -> Config:
    """The config the RayJob's entrypoint runs: its --config file (a path inside the image's
    WORKDIR, which holds this repository) and --set overrides, through the project's loader."""
    argv = shlex.split(rayjob["spec"]["entrypoint"])
    path = argv[argv.index("--config") + 1]
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    workdir = re.findall(r"^WORKDIR\s+(\S+)", dockerfile, re.M)[-1]
    rel = Path(path).relative_to(workdir) if Path(path).is_absolute() else Path(path)
    return load_config(ROOT / rel, overrides)


# --- what the clusters hold ----------------------------------------------------------------------


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity ("8", "500m", "32Gi", "4G") as a number."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text))
    assert m, f"not a Kubernetes quantity: {text!r}"
    units = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": GiB}
    units["Ti"] = 2**40
    return float(m.group(1)) * units[m.group(2)]


@dataclass(frozen=True)
class PodGroup:
    """``pods`` nodes at most, each with ``cpus`` and ``memory`` bytes for tasks and actors."""

    name: str
    pods: int
    cpus: float
    memory: float


def cluster_spec(doc: dict) -> dict:
    return doc["spec"].get("rayClusterSpec") or doc["spec"]["rayClusterConfig"]


def ray_container(template: dict) -> dict:
    return template["spec"]["containers"][0]


def all_containers(spec: dict) -> list[tuple[str, dict]]:
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    return [(f"{name}/{c['name']}", c) for name, g in groups for c in g["template"]["spec"]["containers"]]


def env_of(container: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def worker_groups(spec: dict) -> list[PodGroup]:
    """The worker groups as Ray sees them at their largest: KubeRay gives Ray the container's CPU
    and memory limits (requests where no limit); without the autoscaler a group stays at replicas."""
    autoscaled = spec.get("enableInTreeAutoscaling") is True
    out = []
    for g in spec["workerGroupSpecs"]:
        res = ray_container(g["template"])["resources"]
        params = g.get("rayStartParams") or {}
        cpus = quantity(params.get("num-cpus") or res.get("limits", {}).get("cpu") or res["requests"]["cpu"])
        memory = quantity(params.get("memory") or res.get("limits", {}).get("memory") or res["requests"]["memory"])
        store = (
            quantity(params["object-store-memory"]) if "object-store-memory" in params else OBJECT_STORE_SHARE * memory
        )
        pods = g["maxReplicas"] if autoscaled else g.get("replicas", 1)
        out.append(PodGroup(g["groupName"], pods, math.ceil(cpus), memory - store))
    return out


def pack(asks: tuple[Ask, ...] | list[Ask], groups: list[PodGroup]) -> tuple[list[str], int]:
    """Place every ask on the groups' pods, largest first (first fit); the problems and how many
    pods stay empty."""
    pods = [[g.cpus, g.memory] for g in groups for _ in range(g.pods)]
    used = [False] * len(pods)
    problems = []
    for ask in sorted(asks, key=lambda a: (a.cpus, a.memory), reverse=True):
        if not any(g.cpus >= ask.cpus and g.memory >= ask.memory for g in groups):
            problems.append(
                f"{ask.what}: one asks for {ask.cpus:g} CPUs and {ask.memory / GiB:g} GiB, more than a worker pod "
                f"holds ({', '.join(f'{g.name}: {g.cpus:g} CPUs, {g.memory / GiB:.1f} GiB' for g in groups)})"
            )
            continue
        left = ask.count
        for i, pod in enumerate(pods):
            while left and pod[0] + 1e-9 >= ask.cpus and pod[1] + 1e-9 >= ask.memory:
                pod[0] -= ask.cpus
                pod[1] -= ask.memory
                used[i] = True
                left -= 1
        if left:
            problems.append(
                f"{ask.what}: {left} of {ask.count} x {ask.cpus:g} CPUs do not fit in the worker pods at their "
                f"maximum ({', '.join(f'{g.pods} x {g.cpus:g} CPUs' for g in groups)})"
            )
    return problems, used.count(False)


def pipeline_problems(cfg: Config, groups: list[PodGroup]) -> list[str]:
    """Every phase of every step on the groups at their maximum; Ray Data keeps a pod beside the
    actors and Train workers it feeds (with no CPU left it never reads and the stage hangs)."""
    problems = []
    for step, phases in pipeline_phases(cfg).items():
        for phase in phases:
            found, free = pack(phase.asks, groups)
            problems += [f"{step}: {p}" for p in found]
            if not found and phase.fed_by_data and free < 1:
                problems.append(f"{step}: {phase.asks[0].what} fill every worker pod, none left for Ray Data")
    return problems


# --- the checks ----------------------------------------------------------------------------------


def common_cluster_problems(doc: dict) -> list[str]:
    """What both manifests need: the autoscaler, a head that runs no work, token authentication,
    memory requests equal to the limits Ray is told."""
    spec = cluster_spec(doc)
    kind = doc["kind"]
    problems = []
    if spec.get("enableInTreeAutoscaling") is not True:
        problems.append(f"{kind}: enableInTreeAutoscaling is not true, so worker groups never pass replicas")
    if str((spec["headGroupSpec"].get("rayStartParams") or {}).get("num-cpus")) != "0":
        problems.append(f"{kind}: the head's num-cpus is not 0")
    for g in spec.get("workerGroupSpecs", []):
        if not 0 <= g.get("minReplicas", -1) <= g.get("replicas", g.get("minReplicas", 0)) <= g.get("maxReplicas", -1):
            problems.append(f"{kind}: worker group {g['groupName']} needs minReplicas <= replicas <= maxReplicas")
    by_option = (spec.get("authOptions") or {}).get("mode") == "token"
    for where, c in all_containers(spec):
        env = env_of(c)
        if not by_option and not (env.get("RAY_AUTH_MODE") == "token" and isinstance(env.get("RAY_AUTH_TOKEN"), dict)):
            problems.append(f"{kind} {where}: no token (authOptions.mode: token, or RAY_AUTH_* env from a Secret)")
        res = c.get("resources", {})
        memory = res.get("requests", {}).get("memory")
        if not memory or memory != res.get("limits", {}).get("memory"):
            problems.append(f"{kind} {where}: the memory request must equal the limit (Ray is told the limit)")
    return problems


def rayjob_problems(rayjob: dict, cfg: Config) -> list[str]:
    return common_cluster_problems(rayjob) + pipeline_problems(cfg, worker_groups(cluster_spec(rayjob)))


def _but_run_dir(args: dict) -> dict:
    return {k: v for k, v in args.items() if k != "run_dir"}


def serve_app_problems(serve_config: dict, composed: dict, where: str) -> list[str]:
    """Serve's own settings: every interface, and per deployment resources and autoscaling; the
    same deployments and args as serve/config.composed.yaml (the run directory aside)."""
    problems = []
    if (serve_config.get("http_options") or {}).get("host") != "0.0.0.0":
        problems.append(f"{where}: http_options.host is not 0.0.0.0")
    app, want = serve_config["applications"][0], composed["applications"][0]
    if app["import_path"] != want["import_path"] or _but_run_dir(app.get("args", {})) != _but_run_dir(want["args"]):
        problems.append(f"{where}: import_path or args differ from serve/config.composed.yaml's")
    deployments = {d["name"]: d for d in app.get("deployments", [])}
    if set(deployments) != {d["name"] for d in want["deployments"]}:
        problems.append(f"{where}: deployments {sorted(deployments)} are not serve/config.composed.yaml's")
    for name, d in deployments.items():
        opts, auto = d.get("ray_actor_options") or {}, d.get("autoscaling_config") or {}
        if not {"num_cpus", "memory"} <= set(opts):
            problems.append(f"{where} {name}: ray_actor_options needs num_cpus and memory")
        if not {"min_replicas", "max_replicas", "target_ongoing_requests"} <= set(auto):
            problems.append(
                f"{where} {name}: autoscaling_config needs min_replicas, max_replicas, target_ongoing_requests"
            )
        elif not 1 <= auto["min_replicas"] <= auto["max_replicas"] or "num_replicas" in d:
            problems.append(f"{where} {name}: needs 1 <= min_replicas <= max_replicas and no num_replicas")
    return problems


def serve_asks(serve_config: dict) -> list[Ask]:
    """Every deployment at its max_replicas."""
    out = []
    for d in serve_config["applications"][0].get("deployments", []):
        opts, auto = d.get("ray_actor_options") or {}, d.get("autoscaling_config") or {}
        n = auto.get("max_replicas", d.get("num_replicas", 1))
        out.append(Ask(f"{d['name']} replicas", n, opts.get("num_cpus", 1), opts.get("memory", 0)))
    return out


def rayservice_problems(rayservice: dict, composed: dict) -> list[str]:
    spec = cluster_spec(rayservice)
    serve_config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    problems = common_cluster_problems(rayservice) + serve_app_problems(serve_config, composed, "serveConfigV2")
    problems += pack(serve_asks(serve_config), worker_groups(spec))[0]
    for where, c in all_containers(spec):
        if not HAPROXY_ENV.items() <= env_of(c).items():
            problems.append(f"RayService {where}: RAY_SERVE_ENABLE_HA_PROXY=1 is not set")
    return problems + keys_file_problems(spec, serve_config["applications"][0].get("args", {}))


def keys_file_problems(spec: dict, args: dict) -> list[str]:
    """The app refuses to start without its keys file: every container must see it, from a Secret."""
    keys_file = args.get("keys_file")
    if not keys_file:
        return ["RayService: serveConfigV2 args name no keys_file (the app does not start without one)"]
    if "://" in keys_file:
        return []  # read from object storage, not from the pod
    problems = []
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    for name, g in groups:
        pod = g["template"]["spec"]
        secrets = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
        for c in pod["containers"]:
            mounted = [
                m
                for m in c.get("volumeMounts", [])
                if m["name"] in secrets and keys_file.startswith(m["mountPath"] + "/")
            ]
            if not mounted:
                problems.append(
                    f"RayService {name}/{c['name']}: keys_file {keys_file} is on no Secret volume mounted here"
                )
    return problems


def launcher_problems(launcher: dict, cfg: Config) -> list[str]:
    """cluster.yaml: token and HAProxy on every node's `ray start`, the token file on every node,
    and the pipeline at max_workers (worker CPUs as the node types state them)."""
    problems = []
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next((c for c in launcher[key] if "ray start" in c), "")
        for var in ("RAY_AUTH_MODE=token", "RAY_SERVE_ENABLE_HA_PROXY=1"):
            if var not in start:
                problems.append(f"cluster.yaml {key}: `ray start` without {var}")
    if not any(remote.endswith("/.ray/auth_token") for remote in launcher.get("file_mounts", {})):
        problems.append("cluster.yaml: file_mounts gives the nodes no ~/.ray/auth_token")
    groups = [
        PodGroup(name, t["max_workers"], t["resources"]["CPU"], math.inf)
        for name, t in launcher["available_node_types"].items()
        if name != launcher["head_node_type"] and "CPU" in t.get("resources", {})
    ]
    if not groups:
        return [*problems, "cluster.yaml: no worker node type states its CPUs (resources: {CPU: n})"]
    return problems + [f"cluster.yaml: {p}" for p in pipeline_problems(cfg, groups)]


def image_problems(dockerfile: str, pyproject: dict, manifests: list[dict]) -> list[str]:
    """The base image is Ray's CPU image of the pinned Ray and Python; torch is the pinned CPU
    wheel; every container of every manifest runs one image, tagged with the project's version."""
    problems = []
    deps = pyproject["project"]["dependencies"]
    ray_pin = next(re.search(r"==([\d.]+)", d).group(1) for d in deps if d.startswith("ray["))
    torch_pin = next(d for d in deps if d.startswith("torch=="))
    python = re.search(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"]).groups()
    base = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    if base != [f"rayproject/ray:{ray_pin}-py{''.join(python)}-cpu"]:
        problems.append(f"Dockerfile: FROM {base}, not rayproject/ray:{ray_pin}-py{''.join(python)}-cpu")
    if any(v != ray_pin for v in re.findall(r"ray\.__version__ == '([^']+)'", dockerfile)):
        problems.append(f"Dockerfile: its build check expects another Ray than {ray_pin}")
    if torch_pin not in dockerfile or "download.pytorch.org/whl/cpu" not in dockerfile:
        problems.append(f"Dockerfile: does not install {torch_pin} from the CPU wheel index")
    if not re.search(r"pip install[^\n]*\s\.(\s|$)", dockerfile):
        problems.append("Dockerfile: does not install the project (pip install .)")
    images = set()
    for doc in manifests:
        spec = cluster_spec(doc)
        if spec.get("rayVersion") != ray_pin:
            problems.append(f"{doc['kind']}: rayVersion {spec.get('rayVersion')!r}, pyproject pins ray {ray_pin}")
        images |= {c["image"] for _, c in all_containers(spec)}
    want = f":{pyproject['project']['version']}"
    if len(images) != 1 or not next(iter(images)).endswith(want):
        problems.append(f"manifests: images {sorted(images)}, want one, tagged {want}")
    return problems


# --- the tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files() -> dict[str, Any]:
    return {
        "rayjob": read_yaml(ROOT / "k8s" / "rayjob.yaml"),
        "rayservice": read_yaml(ROOT / "k8s" / "rayservice.yaml"),
        "composed": read_yaml(ROOT / "serve" / "config.composed.yaml"),
        "launcher": read_yaml(ROOT / "cluster.yaml"),
        "dockerfile": (ROOT / "Dockerfile").read_text(),
        "pyproject": tomllib.loads((ROOT / "pyproject.toml").read_text()),
    }


@pytest.fixture(scope="module")
def cfg(files) -> Config:
    return job_config(files["rayjob"], files["dockerfile"])


def test_the_rayjob_runs_configs_cluster_yaml(files, cfg):
    assert "--config" in files["rayjob"]["spec"]["entrypoint"]
    assert cfg == load_config(ROOT / "configs" / "cluster.yaml")


def test_the_phase_table_covers_every_step_and_resource_request_of_the_pipeline(cfg):
    """Each phase of actors or Train workers is one ScalingConfig / ActorPoolStrategy call: a step
    that gains or loses one fails here until pipeline_phases says what it asks for."""
    phases = pipeline_phases(cfg)
    assert list(phases) == pipeline_steps()
    for step, step_phases in phases.items():
        asked = sum(1 for p in step_phases if p.fed_by_data)
        assert asked == resource_sites(step), f"{step}: update pipeline_phases to what ray_jobs/{step}.py asks for"


def test_the_rayjob_holds_every_stage_at_its_maximum(files, cfg):
    problems = rayjob_problems(files["rayjob"], cfg)
    assert not problems, "\n".join(problems)


def test_the_rayservice_autoscales_every_deployment_within_its_workers(files):
    problems = rayservice_problems(files["rayservice"], files["composed"])
    assert not problems, "\n".join(problems)


def test_the_composed_serve_config_binds_every_interface(files):
    assert files["composed"]["http_options"]["host"] == "0.0.0.0"


def test_the_launcher_starts_every_node_with_token_and_haproxy_and_holds_the_pipeline(files, cfg):
    problems = launcher_problems(files["launcher"], cfg)
    assert not problems, "\n".join(problems)


def test_the_image_pins_pyprojects_ray_and_the_manifests_run_one_image(files):
    problems = image_problems(files["dockerfile"], files["pyproject"], [files["rayjob"], files["rayservice"]])
    assert not problems, "\n".join(problems)


def test_the_build_context_leaves_out_local_state():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "runs", "test-artifacts", "**/__pycache__", ".git"} <= ignored


# --- the checks notice broken files ---------------------------------------------------------------


def _without_autoscaler(doc):
    cluster_spec(doc).pop("enableInTreeAutoscaling")


def _small_pods(doc):
    cluster_spec(doc)["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"cpu": "2", "memory": "8Gi"},
    }


def _few_pods(doc):
    cluster_spec(doc)["workerGroupSpecs"][0]["maxReplicas"] = 2


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (_without_autoscaler, "enableInTreeAutoscaling is not true"),
        (_small_pods, "more than a worker pod holds"),
        (_few_pods, "do not fit in the worker pods"),
        (lambda doc: cluster_spec(doc).pop("authOptions"), "no token"),
    ],
)
def test_the_rayjob_check_notices_a_cluster_that_cannot_run_the_pipeline(files, cfg, breaks, expected):
    doc = copy.deepcopy(files["rayjob"])
    breaks(doc)
    assert any(expected in p for p in rayjob_problems(doc, cfg))


def _serve_config_edit(edit):
    def breaks(doc):
        serve_config = yaml.safe_load(doc["spec"]["serveConfigV2"])
        edit(serve_config)
        doc["spec"]["serveConfigV2"] = yaml.safe_dump(serve_config)

    return breaks


def _deployment(serve_config, name):
    return next(d for d in serve_config["applications"][0]["deployments"] if d["name"] == name)


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (lambda doc: ray_container(cluster_spec(doc)["workerGroupSpecs"][0]["template"]).pop("env"), "HA_PROXY"),
        (_serve_config_edit(lambda c: c["http_options"].update(host="127.0.0.1")), "not 0.0.0.0"),
        (_serve_config_edit(lambda c: _deployment(c, "RankingDeployment").pop("autoscaling_config")), "autoscaling"),
        (_serve_config_edit(lambda c: _deployment(c, "Gateway").pop("ray_actor_options")), "ray_actor_options"),
        (
            _serve_config_edit(
                lambda c: _deployment(c, "ExpansionDeployment")["autoscaling_config"].update(max_replicas=99)
            ),
            "do not fit",
        ),
        (_serve_config_edit(lambda c: c["applications"][0]["args"].update(rank_in_ingress=True)), "args differ"),
        (
            lambda doc: ray_container(cluster_spec(doc)["workerGroupSpecs"][0]["template"]).pop("volumeMounts"),
            "keys_file",
        ),
        (lambda doc: cluster_spec(doc)["headGroupSpec"]["template"]["spec"].pop("volumes"), "on no Secret volume"),
        (_serve_config_edit(lambda c: c["applications"][0]["args"].pop("keys_file")), "no keys_file"),
    ],
)
def test_the_rayservice_check_notices_a_broken_service(files, breaks, expected):
    doc = copy.deepcopy(files["rayservice"])
    breaks(doc)
    assert any(expected in p for p in rayservice_problems(doc, files["composed"]))


def test_the_image_check_notices_a_base_image_of_another_ray(files):
    dockerfile = re.sub(r"rayproject/ray:[\d.]+-", "rayproject/ray:2.0.0-", files["dockerfile"])
    dockerfile = re.sub(r"ray\.__version__ == '[^']+'", "ray.__version__ == '2.0.0'", dockerfile)
    problems = image_problems(dockerfile, files["pyproject"], [files["rayjob"], files["rayservice"]])
    assert any(p.startswith("Dockerfile: FROM") for p in problems)
    assert any("build check expects another Ray" in p for p in problems)
