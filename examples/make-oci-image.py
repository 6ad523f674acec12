"""Write a one-layer OCI image layout that skopeo can push (`oci:DIR:TAG`), without Docker.

    python3 examples/make-oci-image.py DIR TAG [FILE ...]

The layer holds the FILEs (by default one `hello.txt`); the same input always gives the same
digests. An existing layout keeps its other tags.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2000-01-01T00:00:00Z"
EPOCH = 946684800  # CREATED, for the files in the layer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="the OCI layout to write (created if missing)")
    parser.add_argument("tag", help="the image's tag in the layout")
    parser.add_argument("files", nargs="*", type=Path, help="files to put in the layer")
    arguments = parser.parse_args()
    files = {path.name: path.read_bytes() for path in arguments.files} or {
        "hello.txt": b"hello from dockgate\n"
    }
    digest = write_image(arguments.directory, arguments.tag, files)
    print(f"oci:{arguments.directory}:{arguments.tag} {digest}")
    return 0


def write_image(directory: Path, tag: str, files: dict[str, bytes]) -> str:
    """Write the image into the layout at `directory`, tagged `tag`; return the manifest digest."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    tar = _tar(files)
    layer = _gzip(tar)
    config = _canonical(
        {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
        }
    )
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": _put(blobs, config), "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": _put(blobs, layer), "size": len(layer)}],
        }
    )
    digest = _put(blobs, manifest)
    index = directory / "index.json"
    entries = json.loads(index.read_text())["manifests"] if index.exists() else []
    entries = [e for e in entries if e.get("annotations", {}).get(REF_NAME) != tag]
    entry = {"mediaType": MANIFEST, "digest": digest, "size": len(manifest)}
    entries.append({**entry, "annotations": {REF_NAME: tag}})
    index.write_bytes(_canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}))
    return digest


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    # a fixed gzip header (no name, mtime 0): the same layer gives the same digest
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def _canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _put(blobs: Path, data: bytes) -> str:
    digest = _digest(data)
    (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    return digest


if __name__ == "__main__":
    sys.exit(main())
