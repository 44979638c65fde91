"""Read and write stage files by URI: a local path, `file://…`, or `gs://bucket/…`.

google-cloud-storage is imported only when a gs:// URI is used, so local runs and tests need nothing beyond Debian's
Python.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse


def is_gcs(uri: str) -> bool:
    return uri.startswith("gs://")


def join(prefix: str, *parts: str) -> str:
    """Join a folder URI (ending with '/') and relative parts with '/'."""
    out = prefix if prefix.endswith("/") else prefix + "/"
    return out + "/".join(p.strip("/") for p in parts)


def local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri)


def _split_gcs(uri: str) -> tuple[str, str]:
    rest = uri[len("gs://") :]
    bucket, _, name = rest.partition("/")
    if not bucket:
        raise ValueError(f"not a gs:// object URI: {uri}")
    return bucket, name


class Storage:
    """One object per process; holds the GCS client once one is needed."""

    def __init__(self) -> None:
        self._client = None

    def _bucket(self, uri: str):
        if self._client is None:
            from google.cloud import storage  # only in the container image

            self._client = storage.Client()
        bucket, name = _split_gcs(uri)
        return self._client.bucket(bucket), name

    def exists(self, uri: str) -> bool:
        if is_gcs(uri):
            bucket, name = self._bucket(uri)
            return bucket.blob(name).exists()
        return local_path(uri).exists()

    def list(self, prefix: str) -> list[str]:
        """Names (relative to `prefix`) of the files below a folder URI, sorted."""
        if is_gcs(prefix):
            bucket, name = self._bucket(prefix)
            return sorted(b.name[len(name) :] for b in bucket.client.list_blobs(bucket, prefix=name))
        root = local_path(prefix)
        if not root.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def download(self, uri: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if is_gcs(uri):
            bucket, name = self._bucket(uri)
            bucket.blob(name).download_to_filename(str(dest))
        else:
            shutil.copyfile(local_path(uri), dest)
        return dest

    def upload(self, src: Path, uri: str) -> None:
        """Whole-file replace: a reader never sees a half-written file (GCS objects are atomic; locally via rename)."""
        if is_gcs(uri):
            bucket, name = self._bucket(uri)
            # Typed by the object's name, not the source's (often a nameless temporary file): a .json object must be
            # application/json, so that the workflow's storage connector reads error.json as a map.
            bucket.blob(name).upload_from_filename(str(src), content_type=mimetypes.guess_type(name)[0])
            return
        dest = local_path(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(src, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result is an ordinary file for other readers
        os.replace(tmp, dest)

    def local_folder(self, uri: str, scratch: Path) -> Path:
        """A local folder with the files below `uri`: the folder itself when local, else a download into scratch."""
        if not is_gcs(uri):
            return local_path(uri)
        for name in self.list(uri):
            self.download(join(uri, name), scratch / name)
        return scratch

    def read_bytes(self, uri: str) -> bytes:
        if is_gcs(uri):
            bucket, name = self._bucket(uri)
            return bucket.blob(name).download_as_bytes()
        return local_path(uri).read_bytes()

    def delete(self, uri: str) -> None:
        """Removes one file; a file already gone is not an error (a retried job may have removed it)."""
        if is_gcs(uri):
            from google.api_core.exceptions import NotFound  # only in the container image

            bucket, name = self._bucket(uri)
            try:
                bucket.blob(name).delete()
            except NotFound:
                pass
            return
        path = local_path(uri)
        path.unlink(missing_ok=True)
        try:  # as in a bucket, a folder goes with its last file
            path.parent.rmdir()
        except OSError:
            pass

    def write_bytes(self, uri: str, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
        try:
            self.upload(Path(f.name), uri)
        finally:
            os.unlink(f.name)
