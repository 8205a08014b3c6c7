"""Body files in the page cache are read on the event loop; cold ones in a thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from courriel.store import blobs
from courriel.store.blobs import FileBlobStore

pytestmark = pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="RWF_NOWAIT is Linux only")


def drop_from_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the file is fsynced: pages are clean
    finally:
        os.close(fd)


async def test_a_cached_body_is_read_without_a_thread(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    try:
        data = os.urandom(200_000)
        blob_id = await store.put(data)
        path = store.path(blob_id)
        assert blobs._read_cached(path) == data  # just written: in the page cache
        drop_from_cache(path)
        assert blobs._read_cached(path) is None  # cold: the loop must not wait for the disk
        assert await store.get(blob_id) == data  # ... so get reads it in a thread
        assert blobs._read_cached(path) == data  # and now it is cached again
    finally:
        await store.close()


async def test_large_bodies_are_never_read_on_the_loop(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    try:
        data = b"x" * (blobs.LOOP_READ_MAX + 1)
        blob_id = await store.put(data)
        assert blobs._read_cached(store.path(blob_id)) is None
        assert await store.get(blob_id) == data
    finally:
        await store.close()
