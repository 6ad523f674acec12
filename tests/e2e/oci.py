"""Deterministic OCI image layouts for the registry tests, built in pure Python (no Docker)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"

# fixed so that the same content always gives the same digests
_EPOCH = 946684800  # 2000-01-01T00:00:00Z
_CREATED = "2000-01-01T00:00:00Z"


@dataclass(frozen=True)
class ImageDigests:
    """The digests of one tagged image in a layout: manifest, config and layers."""

    manifest: str
    config: str
    layers: tuple[str, ...]


def build_image(
    directory: Path, tag: str, content: bytes | str, *, filename: str = "hello.txt"
) -> str:
    """Write a one-layer image holding `filename` with `content`, tagged `tag`; return its digest.

    The layout is created if missing; an existing layout keeps its other tags (the same tag is
    replaced), so one directory can hold several images.
    """
    data = content.encode() if isinstance(content, str) else content
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    tar = _tar_one_file(filename, data)
    layer = _gzip(tar)
    layer_digest = _write_blob(blobs, layer)
    config = _canonical(
        {
            "created": _CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
            "history": [{"created": _CREATED, "created_by": f"dockgate tests: {filename}"}],
        }
    )
    config_digest = _write_blob(blobs, config)
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": len(layer)}],
        }
    )
    manifest_digest = _write_blob(blobs, manifest)

    index_path = directory / "index.json"
    entries: list[dict[str, object]] = (
        json.loads(index_path.read_text())["manifests"] if index_path.exists() else []
    )
    entries = [e for e in entries if _ref_name(e) != tag]
    entries.append(
        {
            "mediaType": MANIFEST_TYPE,
            "digest": manifest_digest,
            "size": len(manifest),
            "annotations": {REF_NAME: tag},
        }
    )
    index_path.write_bytes(
        _canonical({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": entries})
    )
    return manifest_digest


def read_image(directory: Path, tag: str) -> ImageDigests:
    """The digests of the image tagged `tag` in an OCI layout (one we built or one skopeo wrote)."""
    index = json.loads((directory / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(REF_NAME) == tag:
            digest = str(entry["digest"])
            algorithm, _, hexdigest = digest.partition(":")
            manifest = json.loads((directory / "blobs" / algorithm / hexdigest).read_text())
            return ImageDigests(
                manifest=digest,
                config=str(manifest["config"]["digest"]),
                layers=tuple(str(layer["digest"]) for layer in manifest["layers"]),
            )
    raise KeyError(f"{directory}: no image tagged `{tag}`")


def read_files(directory: Path, tag: str) -> dict[str, bytes]:
    """The regular files in the layers of the image tagged `tag`, by path (later layers win)."""
    files: dict[str, bytes] = {}
    for digest in read_image(directory, tag).layers:
        algorithm, _, hexdigest = digest.partition(":")
        blob = (directory / "blobs" / algorithm / hexdigest).read_bytes()
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    with extracted:
                        files[member.name] = extracted.read()
    return files


def noise(size: int, seed: str = "") -> bytes:
    """`size` incompressible but reproducible bytes (a gzipped layer of about the same size)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _ref_name(entry: dict[str, object]) -> object:
    annotations = entry.get("annotations")
    return annotations.get(REF_NAME) if isinstance(annotations, dict) else None


def _tar_one_file(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = _EPOCH
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    # GzipFile rather than gzip.compress: a fixed header (no name, mtime 0, OS byte 255)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def _canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(blobs: Path, data: bytes) -> str:
    digest = _digest(data)
    (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    return digest
