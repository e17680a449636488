//! A storage backend that fails on demand, for the tests of the writer's
//! recovery: redb's own file backend, with writes and syncs failing while
//! the test says so, as a full or failing disk would.

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The switch the test holds.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    failing: AtomicBool,
    /// While set, the store file's syncs wait (a checkpoint caught in
    /// the middle, for the crash tests).
    holding: Mutex<bool>,
    released: Condvar,
    /// Syncs waiting now.
    held: AtomicUsize,
}

impl Faults {
    pub(crate) fn new() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// From now on, every write and sync fails (or works again).
    pub(crate) fn fail_writes(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// A backend on the file at `path` that obeys this switch.
    pub(crate) fn backend(self: &Arc<Self>, path: &Path) -> std::io::Result<Faulty> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let inner = FileBackend::new(file).map_err(std::io::Error::other)?;
        Ok(Faulty {
            inner,
            faults: self.clone(),
        })
    }

    /// From now on, syncs of the store file wait until this is called
    /// again with `false`.
    pub(crate) fn hold_syncs(&self, holding: bool) {
        *self.holding.lock().unwrap_or_else(PoisonError::into_inner) = holding;
        self.released.notify_all();
    }

    /// How many syncs of the store file wait now.
    pub(crate) fn syncs_held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    fn wait_while_held(&self) {
        let mut holding = self.holding.lock().unwrap_or_else(PoisonError::into_inner);
        if *holding {
            self.held.fetch_add(1, Ordering::SeqCst);
            while *holding {
                holding = self
                    .released
                    .wait(holding)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            self.held.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn check(&self) -> std::io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(std::io::Error::other("injected write failure"))
        } else {
            Ok(())
        }
    }
}

#[derive(Debug)]
pub(crate) struct Faulty {
    inner: FileBackend,
    faults: Arc<Faults>,
}

impl StorageBackend for Faulty {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.faults.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.faults.wait_while_held();
        self.faults.check()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.faults.check()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> std::io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
