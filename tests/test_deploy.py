"""The deployment files say what the issue asks of them, on every machine (no container engine needed).

- Dockerfile: the wheel is built in one stage from what pyproject.toml packages, and only the wheel goes
  into the runtime stage, which runs ``itsm-kpi`` as a non-root user with its data on a volume;
- .dockerignore: an allowlist that lets in what the build copies and nothing secret;
- deploy/kubernetes/: a CronJob that never overlaps, a PersistentVolumeClaim at the store path, the SQL URL
  from a Secret file through ``ITSM_KPI_STORE__SQL_URL_FILE``, no secret value anywhere, a valid config;
- deploy/systemd/: the unit docs/operations.md describes, now kept in one place;
- deploy/build-image (the CI step): skips (exit 77) without a working builder, fails when a builder exists
  and the build or the smoke test fails. Driven here with fake builders; .ci/run runs it for real.
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
import shlex
import stat
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "kubernetes"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
CONFIG_PATH = "/etc/itsm-kpi/itsm-kpi.toml"
DATA_DIR = "/var/lib/itsm-kpi"


# --- Dockerfile -----------------------------------------------------------------------------------------------

@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    instructions, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if current and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued instruction"
    return instructions


def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """The ARG defaults before the first FROM and the stages, in order."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in dockerfile_instructions((REPO / "Dockerfile").read_text(encoding="utf-8")):
        if keyword == "FROM":
            words = rest.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"every stage is named: FROM {rest}"
            stages.append(Stage(base=words[0], name=words[2]))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before the first FROM, got {keyword}"
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def exec_form(args: str) -> list[str]:
    """ENTRYPOINT/CMD must be the JSON exec form (signals reach itsm-kpi, not a shell)."""
    assert args.startswith("["), f"not the exec form (a JSON list): {args}"
    return yaml.safe_load(args)


def runtime_stage() -> Stage:
    return dockerfile()[1][-1]


def test_the_base_is_a_slim_python_that_the_package_supports():
    args, stages = dockerfile()
    assert [s.base for s in stages] == ["${PYTHON_IMAGE}"] * len(stages), "every stage starts from the one base"
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim", args["PYTHON_IMAGE"])
    assert match, f"the default base is a slim python image, got {args['PYTHON_IMAGE']!r}"
    floor = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert tuple(map(int, match.groups())) >= tuple(map(int, floor.groups()))


def test_the_build_stage_makes_the_wheel_from_everything_pyproject_packages():
    build = dockerfile()[1][0]
    copied = {src.rstrip("/") for args in build.all("COPY") for src in args.split()[:-1]}
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"], *wheel["packages"], *wheel["force-include"]}
    assert needed <= copied, f"the build stage does not copy {sorted(needed - copied)}"
    assert any("pip wheel" in run and "--no-deps" in run for run in build.all("RUN")), \
        "the build stage builds the project's wheel (pip wheel --no-deps)"


def test_the_runtime_stage_holds_only_the_installed_wheel():
    build, runtime = dockerfile()[1][0], runtime_stage()
    copies = runtime.all("COPY")
    assert copies and all(c.startswith(f"--from={build.name} ") for c in copies), \
        f"the runtime stage copies from the build stage only (no source tree): {copies}"
    installs = [run for run in runtime.all("RUN") if "pip install" in run]
    assert installs and all(".whl" in run for run in installs), "the runtime stage installs the wheel"
    extras = re.findall(r"\[([a-z,]+)\]", " ".join(installs))
    assert extras and set(",".join(extras).split(",")) <= set(PYPROJECT["project"]["optional-dependencies"])


def test_the_image_runs_itsm_kpi_as_a_non_root_user():
    runtime = runtime_stage()
    users = runtime.all("USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"the image runs as {user}"
    assert user.isdigit(), "a numeric uid, so that Kubernetes' runAsNonRoot can verify it"
    assert exec_form(runtime.all("ENTRYPOINT")[-1]) == ["itsm-kpi"]
    assert "itsm-kpi" in PYPROJECT["project"]["scripts"], "the entry point is the package's console script"
    cmd = exec_form(runtime.all("CMD")[-1])
    assert cmd[0] == "schedule" and cmd[cmd.index("--config") + 1] == CONFIG_PATH


def test_the_data_directory_is_the_working_directory_and_a_volume():
    runtime = runtime_stage()
    assert runtime.all("WORKDIR")[-1] == DATA_DIR, "a relative store.path lands on the volume"
    assert exec_form(runtime.all("VOLUME")[-1]) == [DATA_DIR]
    owned = [run for run in runtime.all("RUN") if "chown" in run]
    assert owned and DATA_DIR in owned[0], "the non-root user can write its data directory"


# --- .dockerignore --------------------------------------------------------------------------------------------

def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parent directories wins
    (``*`` stays within one path segment; ``**/x`` matches ``x`` at any depth; ``!`` lets back in)."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        segments = pattern.lstrip("!").rstrip("/").split("/")
        if segments[0] == "**":
            hit = any(fnmatch.fnmatchcase(part, segments[1]) for part in parts)
        else:
            hit = len(segments) <= len(parts) and all(
                fnmatch.fnmatchcase(part, seg) for part, seg in zip(parts, segments, strict=False))
        if hit:
            ignored = not negated
    return ignored


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_lets_in_what_the_build_copies():
    patterns = dockerignore_patterns()
    build = dockerfile()[1][0]
    for args in build.all("COPY"):
        for src in args.split()[:-1]:
            assert not dockerignored(src.rstrip("/"), patterns), f".dockerignore keeps out {src}, which the build copies"
            sample = next((REPO / src).rglob("*.py"), None) if (REPO / src).is_dir() else None
            if sample:
                assert not dockerignored(str(sample.relative_to(REPO)), patterns)


@pytest.mark.parametrize("path", [".git/config", ".venv/bin/python", "kpi-store/kpi.sqlite", "itsm-kpi.toml",
                                  "env", ".env", "secrets/sql_url", "tests/conftest.py",
                                  "pipeline/__pycache__/cli.cpython-311.pyc"])
def test_dockerignore_keeps_out_what_an_image_must_not_hold(path):
    assert dockerignored(path, dockerignore_patterns()), f"{path} would be sent to the image build"


# --- Kubernetes -----------------------------------------------------------------------------------------------

def k8s_documents() -> dict[str, dict]:
    """Every object of deploy/kubernetes/, by kind (the kustomization included)."""
    found: dict[str, dict] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert doc["kind"] not in found, f"two {doc['kind']} objects"
            found[doc["kind"]] = doc
    return found


def pod_spec() -> dict:
    return k8s_documents()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container() -> dict:
    (only,) = pod_spec()["containers"]
    return only


def mount_of(volume_kind: str) -> tuple[dict, dict]:
    """(volume, its mount) for the one volume of ``volume_kind`` (configMap, secret, persistentVolumeClaim)."""
    (volume,) = [v for v in pod_spec()["volumes"] if volume_kind in v]
    (mount,) = [m for m in container()["volumeMounts"] if m["name"] == volume["name"]]
    return volume, mount


def env_of(c: dict) -> dict[str, str]:
    assert all("valueFrom" not in e for e in c.get("env", [])), "secrets are mounted as files, not env values"
    return {e["name"]: e["value"] for e in c.get("env", [])}


def test_the_kustomization_names_files_that_exist():
    kustomization = k8s_documents()["Kustomization"]
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), name
    for generator in kustomization["configMapGenerator"]:
        for name in generator["files"]:
            assert (K8S / name).is_file(), name
    (image,) = kustomization["images"]
    assert image["name"] == container()["image"], "kustomization's images: sets the CronJob's image"


def test_the_cronjob_never_runs_two_nights_at_once():
    spec = k8s_documents()["CronJob"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert isinstance(spec["startingDeadlineSeconds"], int) and spec["startingDeadlineSeconds"] > 0
    assert len(spec["schedule"].split()) == 5
    assert pod_spec()["restartPolicy"] == "Never"


def test_the_cronjob_runs_the_nightly_job_with_the_mounted_config():
    kustomization = k8s_documents()["Kustomization"]
    volume, mount = mount_of("configMap")
    (generator,) = kustomization["configMapGenerator"]
    assert volume["configMap"]["name"] == generator["name"]
    assert generator["options"]["disableNameSuffixHash"] is True, "the CronJob names the ConfigMap as generated"
    args = container()["args"]
    assert args[0] == "run"
    config = PurePosixPath(args[args.index("--config") + 1])
    assert config == PurePosixPath(CONFIG_PATH)
    assert config.parent == PurePosixPath(mount["mountPath"]) and config.name in generator["files"]
    assert mount["readOnly"] is True


def test_the_store_is_on_the_persistent_volume_claim():
    volume, mount = mount_of("persistentVolumeClaim")
    pvc = k8s_documents()["PersistentVolumeClaim"]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    store = tomllib.loads((K8S / "itsm-kpi.toml").read_text(encoding="utf-8"))["store"]["path"]
    assert PurePosixPath(mount["mountPath"]) in PurePosixPath(store).parents, \
        f"store.path {store} is not on the claim mounted at {mount['mountPath']}"
    assert mount["mountPath"] == DATA_DIR, "the image's data directory (its WORKDIR and VOLUME)"


def test_the_sql_url_comes_from_the_secret_as_a_file():
    volume, mount = mount_of("secret")
    env = env_of(container())
    assert "ITSM_KPI_STORE__SQL_URL" not in env, "the database URL holds a password: from the Secret's file only"
    path = PurePosixPath(env["ITSM_KPI_STORE__SQL_URL_FILE"])
    assert path.parent == PurePosixPath(mount["mountPath"]) and mount["readOnly"] is True
    assert volume["secret"]["secretName"], "a Secret the operator creates (kustomization.yaml says how)"
    for name, value in env.items():  # every *_FILE variable points into the Secret's mount
        if name.endswith("_FILE"):
            assert PurePosixPath(value).parent == PurePosixPath(mount["mountPath"]), name


def test_no_secret_value_is_committed():
    documents = k8s_documents()
    assert "Secret" not in documents, "a Secret manifest would hold its value; it is created with kubectl"
    assert all("secretGenerator" not in d for d in documents.values())
    text = "\n".join(p.read_text(encoding="utf-8") for p in K8S.iterdir())
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "a URL with a password"
    for name, value in env_of(container()).items():
        assert name.endswith("_FILE") or "://" not in value, f"{name} holds a URL inline"


def test_the_config_is_valid_once_the_secret_files_are_read(tmp_path):
    """Resolve the CronJob's *_FILE variables as CONTRACT.md says (the file's content, trailing newline
    removed), then load the ConfigMap's config: it must validate and take its database URL from the file."""
    url = "postgresql+psycopg://kpi:not-a-real-password@db.example/kpi"
    env = {}
    for name, value in env_of(container()).items():
        secret = tmp_path / PurePosixPath(value).name
        secret.write_text(url + "\n" if name == "ITSM_KPI_STORE__SQL_URL_FILE" else "x\n", encoding="utf-8")
        env[name.removesuffix("_FILE")] = secret.read_text(encoding="utf-8").removesuffix("\n")
    settings = Settings.load(K8S / "itsm-kpi.toml", env=env)
    assert settings.store.sql_url == url
    assert str(settings.store.path) == tomllib.loads((K8S / "itsm-kpi.toml").read_text())["store"]["path"]
    named = {cfg.password_env for cfg in settings.sources if cfg.password_env}
    assert named <= set(env), f"a source's password variable has no *_FILE in the CronJob: {named - set(env)}"


def test_the_pod_runs_as_the_images_user_with_sized_resources():
    security = pod_spec()["securityContext"]
    image_uid = int(runtime_stage().all("USER")[-1].split(":")[0])
    assert security["runAsNonRoot"] is True and security["runAsUser"] == image_uid
    assert security["fsGroup"] == image_uid, "the volume and the secret files are the run's to use"
    resources = container()["resources"]
    for what in ("cpu", "memory"):
        assert _quantity(resources["requests"][what]) <= _quantity(resources["limits"][what]), what
    c = container()
    if c["securityContext"].get("readOnlyRootFilesystem"):
        writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
        assert {"/tmp", DATA_DIR} <= writable, "a read-only root needs /tmp and the data directory writable"


def _quantity(text: str | int) -> float:
    units = {"": 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]*)", str(text)).groups()
    return float(number) * units[unit]


# --- systemd --------------------------------------------------------------------------------------------------

def systemd_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys are case-sensitive
    unit.read(REPO / "deploy" / "systemd" / "itsm-kpi.service", encoding="utf-8")
    return unit


def test_the_systemd_unit_runs_the_itsm_kpi_scheduler():
    unit = systemd_unit()
    command = shlex.split(unit["Service"]["ExecStart"])
    assert PurePosixPath(command[0]).name == "itsm-kpi"
    assert command[1] == "schedule" and command[command.index("--config") + 1] == CONFIG_PATH
    assert unit["Service"]["User"] not in ("root", "0")
    assert unit["Service"]["KillSignal"] == "SIGTERM", "SIGTERM lets the running night finish"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_operations_doc_points_to_the_unit_instead_of_a_copy():
    doc = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "deploy/systemd/itsm-kpi.service" in doc
    assert "ExecStart=" not in doc, "the unit lives in deploy/systemd/ only; a second copy would drift"


# --- the CI step: deploy/build-image ---------------------------------------------------------------------------

FAKE_BUILDER = r"""#!/usr/bin/env bash
# A stand-in for docker/podman/buildah, behaving as $FAKE says: ok, info_fails, build_fails, root, silent_id,
# demo_fails, demo_partial.
mode=${FAKE:-ok}
case "$1" in
    info) [ "$mode" = info_fails ] && exit 1; exit 0 ;;
    --version) echo "fake builder 0" ;;
    image) [ "$2" = inspect ] || exit 1
           if [ "${3:-}" = --format ]; then echo "itsm-kpi "; fi; exit 0 ;;
    build) [ "$mode" = build_fails ] && { echo "build step failed" >&2; exit 1; }; exit 0 ;;
    volume) exit 0 ;;
    run) shift; args=" $* "
         if [[ "$args" == *" --entrypoint id "* ]]; then
             case "$mode" in root) echo 0 ;; silent_id) ;; *) echo 10001 ;; esac
             exit 0
         fi
         if [[ "$args" == *" demo "* ]]; then
             [ "$mode" = demo_fails ] && { echo "itsm-kpi: boom" >&2; exit 1; }
             [ "$mode" = demo_partial ] && { echo "itsm-kpi demo partial: 0 tickets read"; exit 0; }
             echo "itsm-kpi demo success: 349 tickets read, 0 rows rejected, 119 periods written, 9059 rows written in 1.3s (run x)"
             exit 0
         fi
         if [[ "$args" == *" query "* ]]; then printf 'n\n541\n'; exit 0; fi
         exit 1 ;;
esac
"""


def run_build_image(tmp_path: Path, mode: str, **env: str) -> subprocess.CompletedProcess:
    """deploy/build-image with fake docker, podman and buildah first on PATH, behaving as ``mode``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("docker", "podman", "buildah"):
        fake = bin_dir / name
        fake.write_text(FAKE_BUILDER, encoding="utf-8")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE": mode, "CI": "", **env}
    environment.pop("ITSM_KPI_IMAGE", None)
    environment.update(env)
    return subprocess.run(["bash", str(REPO / "deploy" / "build-image")], capture_output=True, text=True,
                          env=environment, timeout=60, cwd=tmp_path)


def test_build_image_skips_with_a_reason_when_no_builder_works(tmp_path):
    done = run_build_image(tmp_path, "info_fails")
    assert done.returncode == 77, done.stdout + done.stderr
    assert "SKIPPED: no container builder works on this machine" in done.stdout
    assert "docker info fails" in done.stdout


def test_build_image_can_be_skipped_on_purpose(tmp_path):
    done = run_build_image(tmp_path, "ok", ITSM_KPI_IMAGE="skip")
    assert done.returncode == 77 and "SKIPPED: ITSM_KPI_IMAGE=skip" in done.stdout


def test_build_image_passes_when_the_image_builds_and_its_demo_succeeds(tmp_path):
    done = run_build_image(tmp_path, "ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "runs as uid 10001" in done.stdout
    assert "image: demo: itsm-kpi demo success: 349 tickets read" in done.stdout
    assert "541 scorecard rows" in done.stdout


@pytest.mark.parametrize(("mode", "reason"), [
    ("build_fails", "could not build the image"),
    ("root", "runs as root"),
    ("silent_id", "id -u in the image printed '', not a uid"),
    ("demo_fails", "itsm-kpi demo --store /tmp/x failed in the container"),
    ("demo_partial", "printed 'itsm-kpi demo partial: 0 tickets read', not a success summary"),
])
def test_build_image_fails_when_a_builder_exists_and_the_image_is_wrong(tmp_path, mode, reason):
    done = run_build_image(tmp_path, mode)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "image: FAILED: " in done.stderr and reason in done.stderr


def test_every_deployment_turns_off_numpys_huge_page_hint():
    """docs/operations.md, "Memory: transparent huge pages": the image, the CronJob and the unit set it."""
    image_env = " ".join(runtime_stage().all("ENV")).split()
    assert "NUMPY_MADVISE_HUGEPAGE=0" in image_env
    assert {"name": "NUMPY_MADVISE_HUGEPAGE", "value": "0"} in container()["env"]
    assert systemd_unit()["Service"]["Environment"] == "NUMPY_MADVISE_HUGEPAGE=0"
