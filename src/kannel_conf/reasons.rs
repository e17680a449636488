//! Why a Kannel setting is not carried over to rapidbox: one place for the
//! sentences the conversion prints, so each stays true as rapidbox grows.
//! When rapidbox gains a setting, its key leaves these lists and
//! `convert` carries it.

/// What the conversion says of a key it has no place for.
pub const NO_SUCH_SETTING: &str = "rapidbox has no such setting";

/// Why a key of `group = smsbox` is not carried over. The keys the
/// conversion carries never get here.
pub fn smsbox_key(key: &str) -> &'static str {
    match key {
        "log-file" | "log-level" | "syslog-level" | "syslog-facility" => {
            "rapidbox logs to stderr; RUST_LOG sets the level"
        }
        "access-log" | "access-log-time" | "access-log-clean" => {
            "rapidbox keeps no access log; every message is in its store"
        }
        "sendsms-port-ssl" => {
            "rapidbox serves plain HTTP only: put a TLS proxy in front of [http] listen"
        }
        "sendsms-url" => "rapidbox serves sendsms at /cgi-bin/sendsms only",
        "sendota-url" => "rapidbox has no sendota",
        "xmlrpc-url" => "rapidbox has no XML-RPC interface",
        "immediate-sendsms-reply" => {
            "rapidbox always answers /cgi-bin/sendsms once the messages are durably stored, \
             without waiting for the bearerbox"
        }
        _ => NO_SUCH_SETTING,
    }
}

/// Why a key of a `group = sendsms-user` is not carried over.
pub fn sendsms_user_key(key: &str) -> &'static str {
    match key {
        "allowed-prefix" | "denied-prefix" | "omit-empty" => {
            "Kannel 1.4.5's smsbox does nothing with it for sendsms (measured, \
             kannel-conf/README.md), so neither does rapidbox"
        }
        "white-list" | "black-list" => {
            "a URL smsbox fetched numbers from; rapidbox's sendsms users take \
             white_list_regex and black_list_regex only"
        }
        "dlr-url" => "rapidbox takes a dlr-url with each request only",
        _ => NO_SUCH_SETTING,
    }
}

/// The keys of `group = core` that Kannel's smsbox reads; the others are
/// the bearerbox's alone, and stay with it.
pub fn core_key_read_by_smsbox(key: &str) -> Option<&'static str> {
    match key {
        "http-proxy-host"
        | "http-proxy-port"
        | "http-proxy-ssl"
        | "http-proxy-username"
        | "http-proxy-password"
        | "http-proxy-exceptions"
        | "http-proxy-exceptions-regex" => {
            Some("rapidbox's HTTP calls go out directly, never through a proxy")
        }
        "ssl-client-certkey-file" => {
            Some("rapidbox presents no client certificate to the bearerbox")
        }
        "ssl-trusted-ca-file" => {
            Some("rapidbox checks the https servers it calls against Mozilla's roots, built in")
        }
        "ssl-server-cert-file" | "ssl-server-key-file" => {
            Some("rapidbox serves plain HTTP only: put a TLS proxy in front of [http] listen")
        }
        _ => None,
    }
}

/// Why a whole group is not carried over; `sms-service`, `sendsms-user`,
/// `core` and `smsbox` are handled key by key and never get here.
pub fn group(name: &str) -> &'static str {
    match name {
        "ota-setting" | "ota-bookmark" => "rapidbox has no sendota",
        "wapbox" | "wap-url-map" | "wap-user-map" | "wtls" | "ppg" | "test-ppg"
        | "wap-push-user" | "configuration" => {
            "the wapbox's (or its test tools'), not smsbox's: nothing for rapidbox"
        }
        _ => "the bearerbox's, not smsbox's: nothing for rapidbox; the bearerbox keeps reading it",
    }
}
