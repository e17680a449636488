#!/usr/bin/python3
"""A FUSE file system that passes everything through to a directory and,
while a flag file exists, fails every write, truncate and sync with EIO:
a disk that starts and stops returning I/O errors, for the storage fault
tests (tests/storage_faults.rs). The kernel here has no device-mapper, so
its `error` and `flakey` targets cannot be had; FUSE can.

    faultfs.py BACKING_DIR MOUNT_POINT FLAG_FILE

Runs in the foreground until unmounted (umount MOUNT_POINT) or killed.
Needs Debian's python3-fusepy (module `fusepy`) and /dev/fuse, as root.
"""

import errno
import os
import sys

from fusepy import FUSE, FuseOSError, Operations


class FaultFs(Operations):
    def __init__(self, root, flag):
        self.root = root
        self.flag = flag

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _check(self):
        if os.path.exists(self.flag):
            raise FuseOSError(errno.EIO)

    # Reads and metadata pass through.
    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime",
                "st_nlink", "st_size", "st_uid", "st_blocks")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}

    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def create(self, path, mode, fi=None):
        self._check()
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        return os.close(fh)

    def unlink(self, path):
        return os.unlink(self._path(path))

    def rename(self, old, new):
        self._check()
        return os.rename(self._path(old), self._path(new))

    def mkdir(self, path, mode):
        return os.mkdir(self._path(path), mode)

    def chmod(self, path, mode):
        return os.chmod(self._path(path), mode)

    def utimens(self, path, times=None):
        return os.utime(self._path(path), times)

    # Writes and syncs fail while the flag is up.
    def write(self, path, data, offset, fh):
        self._check()
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        self._check()
        with open(self._path(path), "r+") as f:
            f.truncate(length)

    def fsync(self, path, datasync, fh):
        self._check()
        if datasync:
            return os.fdatasync(fh)
        return os.fsync(fh)

    def flush(self, path, fh):
        return 0

    def fallocate(self, path, mode, offset, length, fh):
        self._check()
        return os.posix_fallocate(fh, offset, length)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    backing, mount, flag = sys.argv[1:]
    FUSE(FaultFs(backing, flag), mount, foreground=True, nothreads=True)
