"""What a launcher leaves behind: a full /dev/shm is a clear error, not SIGBUS; the private directories
of launchers killed outright are removed by the next one, and nobody else's are."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import pytest

from ft.monitor.private_dir import SOCKET_NAME, make_private_dir, remove_stale_dirs
from ft.shared import heartbeat_slots
from ft.shared.errors import RankMonitorError
from ft.shared.heartbeat_slots import SLOT_BYTES, HeartbeatFile


def test_heartbeat_file_reserves_its_pages(tmp_path):
    hb = HeartbeatFile(tmp_path / "hb.bin", capacity=8)
    try:
        assert os.stat(tmp_path / "hb.bin").st_blocks * 512 >= 8 * SLOT_BYTES  # not sparse
    finally:
        hb.close()


def test_a_full_tmpfs_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(heartbeat_slots.os, "posix_fallocate", full)
    with pytest.raises(RankMonitorError, match=r"cannot reserve \d+ bytes for heartbeats in .*No space left"):
        HeartbeatFile(tmp_path / "hb.bin", capacity=8)
    assert not (tmp_path / "hb.bin").exists()


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=30)
    return int(proc.stdout)


def test_stale_private_dirs_of_gone_launchers_are_removed_and_live_ones_kept(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f"pulsetrain-ft-{dead}-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "heartbeats-0.bin").write_bytes(b"\0" * 64)
    alive = tmp_path / f"pulsetrain-ft-{os.getppid()}-def"
    alive.mkdir()
    answering = tmp_path / f"pulsetrain-ft-{dead}-ghi"  # pid unknown here, but its monitor still listens
    answering.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(answering / SOCKET_NAME))
    listener.listen(1)
    unrelated = tmp_path / "pulsetrain-ft-notapid"
    unrelated.mkdir()
    try:
        assert remove_stale_dirs(tmp_path) == [stale]
    finally:
        listener.close()
    assert not stale.exists() and alive.exists() and answering.exists() and unrelated.exists()


def test_the_private_dir_name_carries_the_owner_pid():
    path = make_private_dir()
    try:
        assert path.name.startswith(f"pulsetrain-ft-{os.getpid()}-") and (path.stat().st_mode & 0o777) == 0o700
    finally:
        path.rmdir()
