"""Folders and files only their owner may read: the data directory, the store, the admin token.

The store holds the login-token signing keys and the admin token opens the admin port: a local
user who can read either can sign a registry login or rewrite every policy.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

__all__ = ["make_private_dirs", "tighten"]


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and each missing parent with mode 0700; folders that exist stay as they are.

    `Path.mkdir(parents=True)` would make the parents with the umask's mode (0755 commonly).
    """
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            path.mkdir(mode=0o700)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))


def tighten(path: Path, mode: int) -> None:
    """Take away from `path` the permissions beyond `mode`, when it is ours to change.

    Older versions left the store and the token file to the umask (0644); a file another user
    owns is not ours to change, and changing it would fail anyway.
    """
    status = path.stat()
    if status.st_uid == os.getuid() and status.st_mode & 0o777 & ~mode:
        path.chmod(status.st_mode & 0o777 & mode)
