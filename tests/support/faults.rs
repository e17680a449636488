//! Storage that fails on demand, from the kernel's side: a small ext4 file
//! system on a loop device that can be filled to the last block, and a
//! FUSE layer (`faultfs.py`) whose writes and syncs return EIO while a
//! flag is up.
//!
//! Both need root (mount, losetup; FUSE mounts). [`require_root`] skips a
//! test that cannot have them, printing why, except under CI (`CI=true`),
//! where CI runs as root and a missing piece fails the test. The kernel
//! of these machines has no device-mapper (`dmsetup create` fails: no
//! /dev/mapper/control, no dm-mod module), so its `error` and `flakey`
//! targets are out of reach; the FUSE layer stands in for them.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::Daemon;

/// Debian's Python, which has python3-fusepy (module `fusepy`).
pub const PYTHON: &str = "/usr/bin/python3";

/// How long a mount may take to appear.
const MOUNT_WAIT: Duration = Duration::from_secs(10);

/// Whether `test` can run: true when running as root. Otherwise prints why
/// it is skipped and returns false, or panics under CI.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip_or_fail(test, "it needs root to mount file systems")
}

/// Prints that `test` is skipped because `why` and returns false; under
/// CI, panics instead.
pub fn skip_or_fail(test: &str, why: &str) -> bool {
    if super::in_ci() {
        panic!("{test}: cannot run under CI: {why}");
    }
    eprintln!("{test}: skipped: {why}");
    false
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// True when `point` is a mount point in /proc/mounts.
fn mounted(point: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    let wanted = point.display().to_string();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
}

/// Unmounts `point`; lazily if it is busy (a killed daemon's files).
fn unmount(point: &Path) {
    let p = point.display().to_string();
    if run("umount", &[&p]).is_err() {
        let _ = run("umount", &["-l", &p]);
    }
}

/// A small ext4 file system on a loop device, mounted at `dir/mnt`, that
/// [`fill`](Self::fill) fills to the last block and
/// [`free`](Self::free) empties again. Unmounted and detached on drop.
#[derive(Debug)]
pub struct SmallDisk {
    mount: PathBuf,
    device: String,
    filler: PathBuf,
}

impl SmallDisk {
    /// Makes and mounts a file system of `megabytes` at `dir/mnt`.
    pub fn mount(dir: &Path, megabytes: u64) -> Result<SmallDisk, String> {
        let image = dir.join("disk.img");
        let file = std::fs::File::create(&image).map_err(|e| format!("disk image: {e}"))?;
        file.set_len(megabytes * 1024 * 1024)
            .map_err(|e| format!("disk image: {e}"))?;
        drop(file);
        let image = image.display().to_string();
        let device = run("losetup", &["-f", "--show", &image])?;
        let mount = dir.join("mnt");
        let result = (|| {
            run("mkfs.ext4", &["-q", "-F", &device])?;
            std::fs::create_dir_all(&mount).map_err(|e| format!("mount point: {e}"))?;
            run("mount", &[&device, &mount.display().to_string()])?;
            Ok::<_, String>(())
        })();
        if let Err(e) = result {
            let _ = run("losetup", &["-d", &device]);
            return Err(e);
        }
        Ok(SmallDisk {
            filler: mount.join("filler"),
            mount,
            device,
        })
    }

    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Writes a file until the file system has no block left (ENOSPC),
    /// as another program filling the disk would. Returns the bytes
    /// written.
    pub fn fill(&self) -> u64 {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
            .unwrap_or_else(|e| panic!("cannot create the filler: {e}"));
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(_) => break,
            }
        }
        // Smaller pieces for the last partial blocks.
        for size in [4096usize, 512, 1] {
            while let Ok(n) = file.write(&chunk[..size]) {
                if n == 0 {
                    break;
                }
                written += n as u64;
            }
        }
        let _ = file.sync_all();
        written
    }

    /// Removes what [`fill`](Self::fill) wrote: space is back.
    pub fn free(&self) {
        std::fs::remove_file(&self.filler)
            .unwrap_or_else(|e| panic!("cannot remove the filler: {e}"));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        unmount(&self.mount);
        let _ = run("losetup", &["-d", &self.device]);
    }
}

/// A directory behind `faultfs.py`: everything passes through to
/// `dir/backing`, mounted at `dir/mnt`, and every write, truncate and sync
/// fails with EIO while [`fail`](Self::fail) says so. Unmounted on drop.
#[derive(Debug)]
pub struct FailingDisk {
    mount: PathBuf,
    flag: PathBuf,
    daemon: Daemon,
}

impl FailingDisk {
    /// Mounts the layer; an error says what is missing (python3-fusepy,
    /// /dev/fuse) or what failed.
    pub async fn mount(dir: &Path) -> Result<FailingDisk, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("no /dev/fuse".into());
        }
        let probe = Command::new(PYTHON)
            .args(["-c", "import fusepy"])
            .output()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        if !probe.status.success() {
            return Err("no python3-fusepy (apt-get install -y python3-fusepy)".into());
        }
        let backing = dir.join("backing");
        let mount = dir.join("mnt");
        let flag = dir.join("fail-now");
        for d in [&backing, &mount] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/faultfs.py");
        let mut daemon = Daemon::spawn(
            "faultfs",
            PYTHON,
            [
                script.to_owned(),
                backing.display().to_string(),
                mount.display().to_string(),
                flag.display().to_string(),
            ],
            dir,
            Vec::new(),
        );
        let started = Instant::now();
        while !mounted(&mount) {
            if daemon.try_exit_status().is_some() || started.elapsed() > MOUNT_WAIT {
                return Err(format!("faultfs did not mount\n{}", daemon.log_tails()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(FailingDisk {
            mount,
            flag,
            daemon,
        })
    }

    /// Where the layer is mounted.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// From now on writes and syncs fail with EIO (or work again).
    pub fn fail(&self, failing: bool) {
        if failing {
            std::fs::write(&self.flag, b"")
                .unwrap_or_else(|e| panic!("cannot raise the fault flag: {e}"));
        } else if let Err(e) = std::fs::remove_file(&self.flag) {
            panic!("cannot lower the fault flag: {e}");
        }
    }
}

impl Drop for FailingDisk {
    fn drop(&mut self) {
        unmount(&self.mount);
        self.daemon.stop();
    }
}
