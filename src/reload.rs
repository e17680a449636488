//! The parts of the configuration that change while rapidbox runs
//! (SIGHUP): the apps (with `[[sms_services]]` and `[smsbox]`), the
//! backends' transports, `[[sendsms_users]]` and `[[console_users]]`.
//!
//! They live together in one [`Snapshot`] behind one [`Reloadable`]
//! handle that every part reading them holds a clone of. Each message
//! takes the snapshot once, when it comes in, and keeps it to the end: a
//! reload never changes the apps under a message being routed, and the
//! old snapshot is freed when the last message holding it is done. The
//! bearerbox link, the store and the listeners are not in it, so a reload
//! touches none of them.
//!
//! What needs a restart instead (listen addresses, the store, the
//! bearerbox connection, ...) is [`restart_only_changes`]'s to name.

use std::sync::{Arc, RwLock};

use crate::client::HttpClient;
use crate::config::{Config, ConsoleUser, SendsmsUser, Transports};
use crate::router::{App, ReplySettings, Router};
use crate::store::Store;

/// Everything a reload may change, as one consistent whole.
pub struct Snapshot {
    /// The apps, in order, with the reply settings.
    pub router: Router,
    /// Which transport each backend sends through.
    pub transports: Transports,
    /// Who may use `/cgi-bin/sendsms`.
    pub sendsms_users: Vec<SendsmsUser>,
    /// Who may log in to the web console (none: it is disabled).
    pub console_users: Vec<ConsoleUser>,
    /// 0 for the configuration rapidbox started with, one more for each
    /// reload taken.
    pub generation: u64,
}

impl Snapshot {
    /// The snapshot `config` describes: its apps followed by `extra` (an
    /// embedder's own, kept across reloads), its transports, its users.
    pub fn build(
        config: &Config,
        store: &Store,
        http: &HttpClient,
        extra: &[Arc<dyn App>],
    ) -> Snapshot {
        let mut apps: Vec<Arc<dyn App>> = crate::apps::build_for(config, store, http)
            .into_iter()
            .map(Arc::from)
            .collect();
        apps.extend(extra.iter().cloned());
        let router = Router::shared(
            apps,
            Arc::new(store.clone()),
            ReplySettings {
                global_sender: config.kannel.global_sender.clone(),
                dlr_mask: config.kannel.dlr_mask,
            },
        );
        Snapshot {
            router,
            transports: config.transports(),
            sendsms_users: config.sendsms_users.clone(),
            console_users: config.console_users.clone(),
            generation: 0,
        }
    }

    /// A snapshot of `router` and `transports` with no users (tests, and
    /// embedders who configure no HTTP users).
    pub fn new(router: Router, transports: Transports) -> Snapshot {
        Snapshot {
            router,
            transports,
            sendsms_users: Vec::new(),
            console_users: Vec::new(),
            generation: 0,
        }
    }
}

/// The handle onto the current [`Snapshot`]. Cheap to clone; every clone
/// sees a [`Reloadable::replace`] at once.
#[derive(Clone)]
pub struct Reloadable {
    // A read lock held only to clone an `Arc`: readers never wait on a
    // message, and a reload waits at most for those clones.
    current: Arc<RwLock<Arc<Snapshot>>>,
}

impl Reloadable {
    /// A handle onto `first`.
    pub fn new(first: Snapshot) -> Reloadable {
        Reloadable {
            current: Arc::new(RwLock::new(Arc::new(first))),
        }
    }

    /// The current snapshot, to keep for the whole of one message or
    /// request.
    pub fn load(&self) -> Arc<Snapshot> {
        // No code panics while holding the lock (it only clones or swaps
        // an Arc), so a poisoned lock still holds a whole snapshot.
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `next` the current snapshot, numbered one after the one it
    /// replaces; messages that took the old one finish on it.
    pub fn replace(&self, mut next: Snapshot) -> u64 {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        next.generation = guard.generation + 1;
        let generation = next.generation;
        *guard = Arc::new(next);
        generation
    }
}

/// What rapidbox runs on after a reload from `new`: `new`'s reloadable
/// parts with the running configuration's restart-only ones, so that the
/// snapshot agrees with the link, the listeners and the store that keep
/// running (a changed `[kannel] global_sender` must not reach replies
/// before it reaches the link).
pub fn effective(running: &Config, new: &Config) -> Config {
    let mut effective = new.clone();
    effective.store.clone_from(&running.store);
    effective.kannel.clone_from(&running.kannel);
    effective.http.clone_from(&running.http);
    effective.metrics.clone_from(&running.metrics);
    effective.log.clone_from(&running.log);
    effective.runtime = running.runtime;
    effective.push.clone_from(&running.push);
    effective.console.clone_from(&running.console);
    effective.alerts.clone_from(&running.alerts);
    effective.router.defer_after_ms = running.router.defer_after_ms;
    effective.router.max_deferred = running.router.max_deferred;
    effective
}

/// The keys that changed between `running` and `new` but take effect only
/// at the next start, named as in the file (`kannel`, `http.listen`, ...).
/// A reload applies the rest and logs a warning naming these.
pub fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("store", running.store != new.store);
    check("kannel", running.kannel != new.kannel);
    check("http", running.http != new.http);
    check("metrics", running.metrics != new.metrics);
    check("log", running.log != new.log);
    check("runtime", running.runtime != new.runtime);
    check("push", running.push != new.push);
    check("console", running.console != new.console);
    check("alerts", running.alerts != new.alerts);
    // `[router] apps` reloads; the deferral settings shape tasks started
    // with the daemon.
    let mut router = new.router.clone();
    router.apps.clone_from(&running.router.apps);
    check(
        "router.defer_after_ms/max_deferred",
        running.router != router,
    );
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::ReplySettings;

    struct NoIds;
    impl crate::router::Ids for NoIds {
        fn next_id(&self) -> crate::model::MessageId {
            0
        }
    }

    fn snapshot(apps: usize) -> Snapshot {
        let apps: Vec<Box<dyn crate::router::App>> = (0..apps)
            .map(|i| -> Box<dyn crate::router::App> {
                Box::new(crate::apps::Echo::new(
                    &format!("echo{i}"),
                    Default::default(),
                ))
            })
            .collect();
        let router = Router::new(apps, Arc::new(NoIds), ReplySettings::default());
        Snapshot::new(router, Config::default().transports())
    }

    #[test]
    fn a_snapshot_taken_before_a_replace_keeps_the_old_apps() {
        let handle = Reloadable::new(snapshot(1));
        let held = handle.load();
        assert_eq!(handle.replace(snapshot(2)), 1);
        assert_eq!(held.router.app_names(), ["echo0"]);
        assert_eq!(held.generation, 0);
        let fresh = handle.clone().load();
        assert_eq!(fresh.router.app_names(), ["echo0", "echo1"]);
        assert_eq!(fresh.generation, 1);
    }

    #[test]
    fn only_keys_outside_the_snapshot_are_named_as_needing_a_restart() {
        let running = Config::default();
        let mut new = running.clone();
        new.router.apps = vec!["echo".into()];
        new.sendsms_users = Vec::new();
        assert!(restart_only_changes(&running, &new).is_empty());
        new.kannel.port += 1;
        new.http.listen = "127.0.0.1:1".parse().expect("an address");
        new.router.max_deferred += 1;
        assert_eq!(
            restart_only_changes(&running, &new),
            ["kannel", "http", "router.defer_after_ms/max_deferred"]
        );
    }

    #[test]
    fn the_effective_configuration_keeps_every_restart_only_key_as_it_runs() {
        let running = Config::default();
        let mut new = running.clone();
        new.kannel.global_sender = Some("1234".into());
        new.store.cache_mb += 1;
        new.router.defer_after_ms += 1;
        new.router.apps = vec!["echo".into()];
        let effective = effective(&running, &new);
        assert!(restart_only_changes(&running, &effective).is_empty());
        assert_eq!(effective.router.apps, ["echo"]);
        assert_eq!(effective.kannel.global_sender, None);
    }
}
