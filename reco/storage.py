"""Inputs wherever they live: a local path, ``file://``, ``s3://``, ``gs://``, through one pyarrow.fs interface.

Every input a job reads (interactions, seed lists, ranking data, logged feedback) is named by a
:class:`Location`: a filesystem, a path on it and the URI the user wrote, which every error
names. A missing object or an empty file is a one-line :class:`~reco.errors.DataError`, checked
before any Ray work starts. Credentials and endpoints come from the environment as the cloud's
own tools read them (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``),
never from the URI, so a config holds no secret.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from reco.errors import DataError, first_line


def is_uri(text: str) -> bool:
    """Whether ``text`` names a filesystem by scheme (``s3://``, ``file://``) rather than a local path."""
    return "://" in text


@dataclass(frozen=True)
class Location:
    """A file or folder on some filesystem, and the name the user gave it."""

    fs: pafs.FileSystem
    path: str
    uri: str

    def __str__(self) -> str:
        return self.uri

    # -- what is there ---------------------------------------------------------------------------
    def info(self) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(self.path)
        except OSError as e:
            raise DataError(f"cannot reach {self.uri}: {first_line(e)}") from None

    def exists(self) -> bool:
        return self.info().type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self.info().type == pafs.FileType.File

    def remove(self) -> None:
        """Delete this file if it is there (cleaning up: a file already gone is no error)."""
        with contextlib.suppress(OSError):
            self.fs.delete_file(self.path)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    def child(self, name: str) -> Location:
        return Location(self.fs, f"{self.path.rstrip('/')}/{name}", f"{self.uri.rstrip('/')}/{name}")

    def sibling(self, name: str) -> Location:
        """A file beside this one (``u.item`` beside ``u.data``)."""
        parent_path = posixpath.dirname(self.path.rstrip("/"))
        parent_uri = self.uri.rstrip("/").rsplit("/", 1)[0] if "/" in self.uri.rstrip("/") else "."
        return Location(self.fs, f"{parent_path}/{name}", f"{parent_uri}/{name}")

    def files(self) -> list[Location]:
        """The files of a folder, recursively, skipping hidden and ``_``-prefixed ones (``_SUCCESS``), sorted."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=True))
        except OSError as e:
            raise DataError(f"cannot list {self.uri}: {first_line(e)}") from None
        root = self.path.rstrip("/")
        out = []
        for fi in sorted(infos, key=lambda i: i.path):
            rel = fi.path[len(root) + 1 :]
            if fi.type == pafs.FileType.File and not any(p.startswith((".", "_")) for p in rel.split("/")):
                out.append(Location(self.fs, fi.path, f"{self.uri.rstrip('/')}/{rel}"))
        return out

    # -- checks that name the input ---------------------------------------------------------------
    def require_file(self, what: str = "input") -> Location:
        """This location as a readable, non-empty file, or a DataError naming it."""
        info = self.info()
        if info.type == pafs.FileType.NotFound:
            raise DataError(f"{what} not found: {self.uri}")
        if info.type == pafs.FileType.Directory:
            raise DataError(f"expected a file but {self.uri} is a directory")
        if info.size == 0:
            raise DataError(f"{what} file is empty: {self.uri}")
        return self

    def require_exists(self, what: str = "input") -> Location:
        if not self.exists():
            raise DataError(f"{what} not found: {self.uri}")
        return self

    # -- reading ---------------------------------------------------------------------------------
    def open(self) -> pa.NativeFile:
        """A seekable file (Parquet, pandas, pyarrow's CSV reader)."""
        try:
            return self.fs.open_input_file(self.path)
        except OSError as e:
            raise DataError(f"cannot open {self.uri}: {first_line(e)}") from None

    def read_bytes(self) -> bytes:
        with self.open() as f:
            return f.read()

    def text(self, encoding: str = "utf-8") -> io.StringIO:
        """The whole file as text (small side files: names, item context)."""
        return io.StringIO(self.read_bytes().decode(encoding, errors="replace"))

    def first_line(self) -> str:
        with self.open() as f:
            head = f.read(64 * 1024)
        return head.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip("\r\n")


def locate(uri: str, what: str = "input") -> Location:
    """The location ``uri`` names: a local path (made absolute) or any URI pyarrow.fs opens.

    ``what`` names it in errors ("cannot open run directory s3://...: ...").
    """
    if not uri or not str(uri).strip():
        raise DataError(f"the {what} path is empty")
    uri = str(uri)
    if not is_uri(uri):
        return Location(pafs.LocalFileSystem(), os.path.abspath(uri), uri)
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as e:
        raise DataError(f"cannot open {what} {uri}: {first_line(e)}") from None
    return Location(fs, path, uri)


def resolve_local(path: str, base: str | os.PathLike) -> str:
    """A relative local path made absolute against ``base``; URIs and absolute paths unchanged."""
    if is_uri(path) or os.path.isabs(os.path.expanduser(path)):
        return os.path.expanduser(path)
    return os.path.normpath(os.path.join(os.fspath(base), path))
