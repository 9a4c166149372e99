"""The run directory: every artifact of one pipeline run, with a manifest.

A run directory is a local path or any URI ``pyarrow.fs`` opens (s3://, gs://, file://).
Artifacts are files or folders named by a relative path (``vocab/users.parquet``,
``embeddings/users``). Each is written under a temporary name, moved into place, then recorded
in ``manifest.json`` with its row count and the size and sha256 of every file. Loading an
artifact checks it against the manifest first and fails with a message naming it; a crash mid
write leaves either the old artifact or none, never half of one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import platform
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from reco import artifacts
from reco.errors import ArtifactError, ConfigError, DataError
from reco.storage import is_uri, locate

log = logging.getLogger(__name__)

_VERSIONED_PACKAGES = ("reco-ray", "ray", "torch", "faiss-cpu", "pyarrow", "pandas", "numpy")


def resolve_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path) for a local path (made absolute) or a pyarrow.fs URI."""
    try:
        loc = locate(uri, "run directory")
    except DataError as e:
        raise ArtifactError(str(e)) from None
    return loc.fs, loc.path


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class FileRecord:
    bytes: int
    sha256: str


class RunDir:
    """Typed access to one run directory. Cheap to construct; holds no open files."""

    def __init__(self, uri: str):
        self.fs, self.root = resolve_filesystem(uri)
        # A local path is made absolute: Ray Train workers run in their own trial directory, so a
        # relative path handed to them (as RunDir(run.uri)) would name another, empty run.
        self.uri = uri if is_uri(uri) else self.root

    def __repr__(self) -> str:
        return f"RunDir({self.uri!r})"

    # -- paths -----------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel.strip('/')}" if rel else self.root

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def local_path(self, rel: str = "") -> str:
        """A local filesystem path; only for local run directories (Ray Train storage, faiss)."""
        if not self.is_local():
            raise ArtifactError(f"{self.uri} is not a local run directory")
        return self.path(rel)

    def ensure(self) -> None:
        """Create the directory; one line naming it if it cannot be (a missing bucket, no permission)."""
        try:
            self.fs.create_dir(self.root, recursive=True)
        except OSError as e:
            raise ConfigError(f"run_dir {self.uri} cannot be created: {str(e).splitlines()[0]}") from None

    # -- manifest --------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        if not self.exists(artifacts.MANIFEST):
            return {"artifacts": {}}
        with self.fs.open_input_stream(self.path(artifacts.MANIFEST)) as f:
            try:
                return json.loads(f.read().decode())
            except json.JSONDecodeError as e:
                raise ArtifactError(f"{self.uri}/manifest.json is corrupt: {e}") from None

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        self._write_bytes_atomic(artifacts.MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())

    def start(self, config: dict[str, Any]) -> None:
        """Create the directory and record the config and package versions of this run."""
        self.ensure()
        m = self.manifest()
        m.setdefault("created_at", _now())
        m["config"] = config
        m["versions"] = package_versions()
        m.setdefault("artifacts", {})
        self._write_manifest(m)

    def record(self, rel: str, *, step: str, rows: int | None = None, meta: dict[str, Any] | None = None) -> None:
        """Checksum an artifact now in place and add it to the manifest."""
        files = self._checksum(rel)
        if not files:
            raise ArtifactError(f"artifact {rel} in {self.uri} has no files to record")
        m = self.manifest()
        m.setdefault("artifacts", {})[rel] = {
            "step": step,
            "rows": rows,
            "created_at": _now(),
            "files": {name: {"bytes": r.bytes, "sha256": r.sha256} for name, r in files.items()},
            "meta": meta or {},
        }
        self._write_manifest(m)

    def entry(self, rel: str) -> dict[str, Any] | None:
        """The manifest's record of ``rel`` (step, rows, files, meta), unchecked; None if absent."""
        return self.manifest().get("artifacts", {}).get(rel)

    def has(self, rel: str) -> bool:
        """Whether the manifest records artifact ``rel`` (no checksum: :meth:`artifact` checks)."""
        return rel in self.manifest().get("artifacts", {})

    def names(self) -> set[str]:
        """Every artifact the manifest records."""
        return set(self.manifest().get("artifacts", {}))

    def config(self) -> dict[str, Any]:
        """The config this run was made with, as recorded by :meth:`start` (empty if none)."""
        return self.manifest().get("config") or {}

    def forget(self, rel: str) -> None:
        m = self.manifest()
        if m.get("artifacts", {}).pop(rel, None) is not None:
            self._write_manifest(m)

    def artifact(self, rel: str) -> dict[str, Any]:
        """The manifest entry of an artifact after checking every file's size and checksum."""
        entry = self.entry(rel)
        if entry is None:
            raise ArtifactError(
                f"artifact {rel} is not in {self.uri}/manifest.json (run the step that writes it first)"
            )
        actual = self._checksum(rel)
        for name, want in entry["files"].items():
            got = actual.get(name)
            label = f"{rel}/{name}" if name else rel
            if got is None:
                raise ArtifactError(f"artifact {label} in {self.uri} is missing")
            if got.bytes != want["bytes"]:
                raise ArtifactError(
                    f"artifact {label} in {self.uri} is truncated or changed: {got.bytes} bytes, manifest says "
                    f"{want['bytes']}"
                )
            if got.sha256 != want["sha256"]:
                raise ArtifactError(f"artifact {label} in {self.uri} fails its checksum")
        extra = set(actual) - set(entry["files"])
        if extra:
            raise ArtifactError(
                f"artifact {rel} in {self.uri} has files the manifest does not list: {sorted(extra)[:3]}"
            )
        return entry

    # -- atomic writes -----------------------------------------------------------------------
    def staging(self, rel: str) -> str:
        """A fresh temporary folder beside ``rel`` to write into before :meth:`commit_dir`."""
        tmp = f"{rel.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
        self.fs.create_dir(self.path(tmp), recursive=True)
        return tmp

    def commit_dir(self, tmp: str, rel: str, *, step: str, rows: int | None = None, meta: dict | None = None) -> None:
        """Move a staged folder into place (replacing the old one) and record it.

        A local folder moves in one rename. An object store has no folders, so each object is
        moved (copied and deleted) in turn; the artifact is recorded only once all are in place,
        so a crash in between leaves an unrecorded artifact that loading refuses, never half of one.
        """
        self.forget(rel)
        if self.exists(rel):
            self._delete(rel)
        if self.is_local():
            self.fs.move(self.path(tmp), self.path(rel))
        else:
            src, dst = self.path(tmp).rstrip("/"), self.path(rel).rstrip("/")
            for fi in self.fs.get_file_info(pafs.FileSelector(src, recursive=True)):
                if fi.type == pafs.FileType.File:
                    self.fs.move(fi.path, dst + fi.path[len(src) :])
            self._delete(tmp)
        self.record(rel, step=step, rows=rows, meta=meta)

    def write_bytes(
        self, rel: str, data: bytes, *, step: str, rows: int | None = None, meta: dict | None = None
    ) -> None:
        self.forget(rel)
        self._write_bytes_atomic(rel, data)
        self.record(rel, step=step, rows=rows, meta=meta)

    def write_json(self, rel: str, obj: Any, *, step: str) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=2, sort_keys=True, default=_json_default).encode(), step=step)

    def write_table(self, rel: str, table: pa.Table, *, step: str, meta: dict | None = None) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.write_bytes(rel, buf.getvalue(), step=step, rows=table.num_rows, meta=meta)

    def write_file(
        self, rel: str, local_file: str, *, step: str, rows: int | None = None, meta: dict | None = None
    ) -> None:
        with open(local_file, "rb") as f:
            self.write_bytes(rel, f.read(), step=step, rows=rows, meta=meta)

    # -- verified reads ----------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        self.artifact(rel)
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read()

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel).decode())

    def read_table(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        """A verified parquet artifact, file or folder of part files, as one table."""
        entry = self.artifact(rel)
        try:
            if "" in entry["files"]:
                with self.fs.open_input_file(self.path(rel)) as f:
                    return pq.read_table(f, columns=columns)
            return pq.read_table(self.files(rel), filesystem=self.fs, columns=columns, partitioning=None)
        except (pa.ArrowInvalid, OSError) as e:
            raise ArtifactError(f"artifact {rel} in {self.uri} cannot be read: {e}") from None

    def files(self, rel: str) -> list[str]:
        """Full paths of a verified folder artifact's files, for Ray Data readers."""
        entry = self.artifact(rel)
        return [self.path(f"{rel}/{name}") if name else self.path(rel) for name in sorted(entry["files"])]

    # -- internals ---------------------------------------------------------------------------
    def _write_bytes_atomic(self, rel: str, data: bytes) -> None:
        target = self.path(rel)
        parent = target.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, target)

    def _delete(self, rel: str) -> None:
        info = self.fs.get_file_info(self.path(rel))
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(self.path(rel))
        elif info.type == pafs.FileType.File:
            self.fs.delete_file(self.path(rel))

    def _checksum(self, rel: str) -> dict[str, FileRecord]:
        """{name relative to the artifact ('' for a single file): record}."""
        base = self.path(rel)
        info = self.fs.get_file_info(base)
        if info.type == pafs.FileType.NotFound:
            return {}
        if info.type == pafs.FileType.File:
            return {"": self._hash(base)}
        out = {}
        for fi in self.fs.get_file_info(pafs.FileSelector(base, recursive=True)):
            if fi.type == pafs.FileType.File:
                out[fi.path[len(base) + 1 :]] = self._hash(fi.path)
        return out

    def _hash(self, full: str) -> FileRecord:
        h = hashlib.sha256()
        n = 0
        with self.fs.open_input_stream(full) as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
                n += len(chunk)
        return FileRecord(n, h.hexdigest())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
