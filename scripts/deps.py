"""pyproject.toml's dependency declarations, read by the tools that install them (stdlib only, Python >= 3.11).

    python3 scripts/deps.py group dev            # a dependency group, one requirement a line (Makefile's
                                                 # fallback for a pip without --group)
    python3 scripts/deps.py lowest [VENV]        # CI's lowest-versions job: VENV (default .venv-lowest) made
                                                 # anew with the lowest declared version of every direct
                                                 # dependency, then each checked against its floor

`lowest` installs the project with every extra and every dependency group by uv's
``--resolution lowest-direct``: each direct dependency at the lowest version its floor allows, the
transitive ones at their newest compatible release. It then fails when a direct dependency has no floor
(``>=``) or was installed above it (no wheel of the floor for this Python, or another dependency needs
more): a floor that cannot be installed is not tested, so it must be raised. Extras and groups are read
from pyproject.toml, so a dependency added there is covered without changing this script or CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UV = "uv==0.13.9"  # the resolver of the lowest-versions job; pinned so a uv release cannot change its verdict


def pyproject() -> dict:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def direct_requirements(project: dict) -> list[tuple[str, str]]:
    """(where, requirement) for the core dependencies, every extra and every dependency group."""
    out = [("core", r) for r in project["project"].get("dependencies", [])]
    for extra, reqs in project["project"].get("optional-dependencies", {}).items():
        out += [(f"extra {extra}", r) for r in reqs]
    for group, reqs in project.get("dependency-groups", {}).items():
        out += [(f"group {group}", r) for r in reqs if isinstance(r, str)]  # {include-group} tables add none
    return out


def group(name: str) -> list[str]:
    groups = pyproject().get("dependency-groups", {})
    if name not in groups:
        sys.exit(f"no dependency group {name!r} in pyproject.toml (groups: {', '.join(groups) or 'none'})")
    out: list[str] = []
    for r in groups[name]:
        out += group(r["include-group"]) if isinstance(r, dict) else [r]
    return out


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floor_of(requirement: str) -> tuple[str, str | None, str]:
    """(canonical name, the version after ``>=`` or None, environment marker or '')."""
    m = _NAME.match(requirement)
    if not m:
        sys.exit(f"cannot read requirement {requirement!r}")
    spec, _, marker = m.group(3).partition(";")
    floors = [s.strip()[2:].strip() for s in spec.split(",") if s.strip().startswith(">=")]
    return canonical(m.group(1)), (floors[0] if floors else None), marker.strip()


def release(version: str) -> tuple[int, ...]:
    """The numeric release of a version, zero-padded: '3.9.0.post2' and '3.9' -> (3, 9, 0, 0, 0, 0)."""
    m = re.match(r"^\s*v?(?:\d+!)?(\d+(?:\.\d+)*)", version)
    if not m:
        raise ValueError(f"cannot read version {version!r}")
    parts = tuple(int(p) for p in m.group(1).split("."))
    return parts + (0,) * (6 - len(parts))


def marker_applies(python: Path, marker: str) -> bool:
    """Whether an environment marker holds in the venv of `python` (packaging, which pytest needs, is there)."""
    if not marker:
        return True
    code = ("import sys; from packaging.markers import Marker; "
            "sys.exit(10 if Marker(sys.argv[1]).evaluate() else 11)")
    status = subprocess.run([str(python), "-c", code, marker]).returncode
    if status not in (10, 11):  # an error (no packaging, a bad marker) must not read as "does not apply"
        sys.exit(f"cannot evaluate the marker {marker!r} in {python} (exit status {status})")
    return status == 10


def installed_versions(python: Path) -> dict[str, str]:
    """Canonical name -> version of every distribution installed in the venv of `python`."""
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout
    return {canonical(k): v for k, v in json.loads(out).items()}


def ensure_uv() -> Path:
    """uv, in a venv of its own beside the project's (it only resolves and installs; the suite runs without it)."""
    tools = ROOT / ".venv-uv"
    uv = tools / "bin" / "uv"
    probe = subprocess.run([str(uv), "--version"], capture_output=True, text=True) if uv.exists() else None
    if probe is None or probe.returncode != 0 or probe.stdout.split()[1:2] != [UV.split("==")[1]]:
        shutil.rmtree(tools, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
        subprocess.run([str(tools / "bin" / "pip"), "install", "-q", UV], check=True)
    return uv


def install_lowest(project: dict, venv: Path) -> int:
    """Make `venv` anew (one holding newer versions would keep them) with every direct dependency at its lowest."""
    uv = ensure_uv()
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    extras = sorted(project["project"].get("optional-dependencies", {}))
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    cmd = [str(uv), "pip", "install", "--python", str(venv / "bin" / "python"),
           "--resolution", "lowest-direct", "-e", target]
    for g in sorted(project.get("dependency-groups", {})):
        cmd += ["--group", g]
    # wheels only for the direct dependencies: a floor with no wheel for this Python is then reported by
    # check_floors (installed above its floor) instead of compiled from source for many minutes, or not at all
    for name in sorted({floor_of(r)[0] for _, r in direct_requirements(project)}):
        cmd += ["--only-binary", name]
    print("$ " + " ".join(cmd), flush=True)
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def check_floors(project: dict, python: Path) -> list[str]:
    """Print each direct dependency's floor beside the installed version; the floors not installed as declared."""
    versions = installed_versions(python)
    problems: list[str] = []
    seen: set[tuple[str, str | None, str]] = set()
    print(f"\n{'direct dependency':<26} {'declared in':<16} {'floor':<10} installed")
    for where, requirement in direct_requirements(project):
        name, floor, marker = floor_of(requirement)
        if (name, floor, marker) in seen:
            continue
        seen.add((name, floor, marker))
        if not marker_applies(python, marker):
            print(f"{name:<26} {where:<16} {floor or '-':<10} (marker false here: {marker})")
            continue
        got = versions.get(name)
        print(f"{name:<26} {where:<16} {floor or '-':<10} {got or 'MISSING'}")
        if floor is None:
            problems.append(f"{requirement!r} ({where}) has no floor: declare the lowest version that passes (>=)")
        elif got is None:
            problems.append(f"{requirement!r} ({where}) was not installed")
        elif release(got) != release(floor):
            problems.append(f"{requirement!r} ({where}): the lowest installable here is {got}, not {floor} "
                            f"({floor} is not on the index, yanked or has no wheel for this Python, or "
                            f"another dependency needs more): raise the floor to {got}")
    return problems


def lowest(venv: Path) -> int:
    """CI's lowest-versions install: 0 when every direct dependency is installed at its declared floor."""
    project = pyproject()
    status = install_lowest(project, venv)
    if status != 0:
        print(f"\nuv could not install the lowest declared versions (exit status {status})", file=sys.stderr)
        return status
    problems = check_floors(project, venv / "bin" / "python")
    if problems:
        print("\nfloors that this job cannot test:", *problems, sep="\n  ")
        return 1
    print("\nevery direct dependency is installed at its declared floor")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "group":
        print("\n".join(group(argv[1])))
        return 0
    if argv[:1] == ["lowest"] and len(argv) <= 2:
        return lowest(ROOT / (argv[1] if len(argv) == 2 else ".venv-lowest"))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
