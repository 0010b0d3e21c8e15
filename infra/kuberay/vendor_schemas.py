"""Vendor KubeRay's `ray.io/v1` schemas so manifests validate offline, on a clean clone.

KubeRay publishes its CRDs on no package registry, and CI may not have the shared copy beside the
checkout, so the v1 `openAPIV3Schema` of each kind is extracted once and committed, gzipped:

    .venv/bin/python infra/kuberay/vendor_schemas.py [--crds ../shared/kuberay-crds]

Rerun it after updating the CRDs; tests/test_infra.py checks the committed files still match
them whenever the CRDs are present.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_CRDS = REPO_ROOT.parent / "shared" / "kuberay-crds"
DEFAULT_OUT = HERE / "schemas"
# kind -> the CRD file KubeRay's repository keeps it in (ray-operator/config/crd/bases/).
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayCronJob": "ray.io_raycronjobs.yaml",
}
VERSION = "v1"
KUBERAY_REVISION = "a revision after v1.7.0 (August 2026)"

Schema = dict[str, Any]


def load_crd(path: Path) -> dict[str, Any]:
    """One CRD document (libyaml when present: the files are megabytes of YAML)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as f:
        return yaml.load(f, Loader=loader)


def v1_schema(crd: dict[str, Any], kind: str) -> Schema:
    """The `openAPIV3Schema` of the CRD's v1 version (the served, stored one)."""
    if crd["spec"]["names"]["kind"] != kind:
        raise ValueError(f"expected the CRD of {kind}, found {crd['spec']['names']['kind']}")
    for version in crd["spec"]["versions"]:
        if version["name"] == VERSION:
            return version["schema"]["openAPIV3Schema"]
    raise ValueError(f"{kind}: the CRD has no {VERSION} version")


def schema_path(out: Path, kind: str) -> Path:
    return out / f"{kind.lower()}.{VERSION}.schema.json.gz"


def encode(schema: Schema) -> bytes:
    """Deterministic bytes: sorted keys and a zero gzip timestamp, so a rerun is a no-op diff."""
    text = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(text, compresslevel=9, mtime=0)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def readme(crds: dict[str, tuple[dict[str, Any], bytes]], outputs: dict[str, bytes]) -> str:
    """The provenance note committed beside the schemas."""
    rows = []
    for kind, (crd, raw) in crds.items():
        gen = crd["metadata"].get("annotations", {}).get("controller-gen.kubebuilder.io/version")
        rows.append(
            f"| {kind} | `{CRD_FILES[kind]}` (sha256 `{_sha256(raw)[:16]}…`, controller-gen "
            f"{gen}) | `{schema_path(Path('.'), kind).name}` ({len(outputs[kind]):,} bytes) |"
        )
    return "\n".join(
        [
            "# KubeRay `ray.io/v1` schemas (vendored)",
            "",
            'The `spec.versions[name == "v1"].schema.openAPIV3Schema` of KubeRay\'s RayCluster,',
            "RayJob and RayCronJob CustomResourceDefinitions, as gzipped JSON, so that",
            "`tests/test_infra.py` validates `infra/k8s/` offline on a clean clone.",
            "",
            "- Source: the KubeRay project, https://github.com/ray-project/kuberay,",
            f"  `ray-operator/config/crd/bases/`, {KUBERAY_REVISION}.",
            "- License: Apache-2.0 (KubeRay's license); extracted unchanged, only re-encoded.",
            "- Regenerate: `.venv/bin/python infra/kuberay/vendor_schemas.py --crds DIR`.",
            "",
            "| kind | from | file |",
            "|---|---|---|",
            *rows,
            "",
            "Not checked by a JSON Schema validator: the `x-kubernetes-validations` (CEL) rules.",
            "The tests behave like the API server first: drop nulls that are not `nullable`, fill",
            "`default`s, and reject unknown fields (what `kubectl apply`'s strict validation does).",
            "",
        ]
    )


def vendor(crds_dir: Path, out: Path) -> dict[str, Path]:
    """Extract every kind's v1 schema from `crds_dir` into `out`; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    crds: dict[str, tuple[dict[str, Any], bytes]] = {}
    outputs: dict[str, bytes] = {}
    written: dict[str, Path] = {}
    for kind, name in CRD_FILES.items():
        raw = (crds_dir / name).read_bytes()
        crd = load_crd(crds_dir / name)
        crds[kind] = (crd, raw)
        outputs[kind] = encode(v1_schema(crd, kind))
        written[kind] = schema_path(out, kind)
        written[kind].write_bytes(outputs[kind])
    (out / "README.md").write_text(readme(crds, outputs))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crds", type=Path, default=DEFAULT_CRDS, help="the CRD YAML folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the schemas go")
    args = parser.parse_args()
    for kind, path in vendor(args.crds, args.out).items():
        print(f"{kind}: {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
