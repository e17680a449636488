//! Every group Kannel 1.4.5 knows and the keys each may hold: the table
//! `gwlib/cfg.def` compiles into Kannel's binaries, from which Kannel's
//! `add_group` (gwlib/cfg.c) refuses a file with an unknown group or key.
//!
//! Taken from Debian's real binaries, not from the trunk source at hand
//! (they differ: trunk has keys 1.4.5 refuses, and the reverse), with
//! `/usr/sbin/smsbox -g`, which prints the compiled table (bearerbox prints
//! the same one). `tests/kannel_conf.rs` runs that command again and fails
//! when this table no longer matches it. Group and key names are compared
//! exactly, case included, as Kannel does.

/// One group of the table.
#[derive(Debug)]
pub struct GroupKeys {
    /// The group's name, the value of its `group` key.
    pub name: &'static str,
    /// Whether a file holds it at most once (`core`, `smsbox`, ...); Kannel
    /// keeps the last of several. The others (`sms-service`,
    /// `sendsms-user`, `smsc`, ...) may appear any number of times.
    pub single: bool,
    /// The keys it may hold besides `group`, in cfg.def's order.
    pub keys: &'static [&'static str],
}

impl GroupKeys {
    /// Whether the group may hold `key` (`group` included).
    pub fn allows(&self, key: &str) -> bool {
        key == "group" || self.keys.contains(&key)
    }
}

/// The group called `name`, if Kannel has one.
pub fn group(name: &str) -> Option<&'static GroupKeys> {
    GROUPS.iter().find(|group| group.name == name)
}

/// Every group, in cfg.def's order.
#[rustfmt::skip]
pub const GROUPS: &[GroupKeys] = &[
    GroupKeys {
        name: "core",
        single: true,
        keys: &[
            "admin-port", "admin-port-ssl", "admin-interface", "admin-password", "status-password",
            "admin-deny-ip", "admin-allow-ip", "smsbox-port", "smsbox-port-ssl", "smsbox-interface",
            "smsbox-max-pending", "wapbox-port", "wapbox-port-ssl", "box-deny-ip", "box-allow-ip",
            "udp-deny-ip", "udp-allow-ip", "wdp-interface-name", "log-file", "log-level",
            "syslog-level", "syslog-facility", "access-log", "access-log-time", "access-log-format",
            "access-log-clean", "store-file", "store-dump-freq", "store-type", "store-location",
            "unified-prefix", "white-list", "white-list-regex", "black-list", "black-list-regex",
            "white-list-sender", "white-list-sender-regex", "black-list-sender",
            "black-list-sender-regex", "white-list-receiver", "white-list-receiver-regex",
            "black-list-receiver", "black-list-receiver-regex", "http-proxy-host",
            "http-proxy-port", "http-proxy-ssl", "http-proxy-exceptions",
            "http-proxy-exceptions-regex", "http-proxy-username", "http-proxy-password",
            "ssl-client-certkey-file", "ssl-server-cert-file", "ssl-server-key-file",
            "ssl-trusted-ca-file", "ssl-client-cipher-list", "ssl-server-cipher-list",
            "dlr-storage", "dlr-spool", "maximum-queue-length", "sms-incoming-queue-limit",
            "sms-outgoing-queue-limit", "sms-resend-freq", "sms-resend-retry",
            "sms-combine-concatenated-mo", "sms-combine-concatenated-mo-timeout", "http-timeout",
        ],
    },
    GroupKeys {
        name: "wapbox",
        single: true,
        keys: &[
            "bearerbox-host", "timer-freq", "url-map", "map-url", "map-url-max", "map-url-0",
            "map-url-1", "map-url-2", "map-url-3", "map-url-4", "map-url-5", "map-url-6",
            "map-url-7", "map-url-8", "map-url-9", "device-home", "log-file", "log-level",
            "syslog-level", "syslog-facility", "smart-errors", "access-log", "access-log-time",
            "access-log-clean", "http-interface-name", "concatenation", "max-messages",
            "wml-strict", "http-timeout",
        ],
    },
    GroupKeys {
        name: "wap-url-map",
        single: false,
        keys: &[
            "name", "url", "map-url", "send-msisdn-query", "send-msisdn-header",
            "send-msisdn-format", "accept-cookies",
        ],
    },
    GroupKeys {
        name: "wap-user-map",
        single: false,
        keys: &[
            "name", "user", "pass", "msisdn",
        ],
    },
    GroupKeys {
        name: "wtls",
        single: true,
        keys: &[
            "certificate-file", "privatekey-file", "privatekey-password",
        ],
    },
    GroupKeys {
        name: "ppg",
        single: true,
        keys: &[
            "ppg-url", "ppg-port", "ppg-ssl-port", "trusted-pi", "concurrent-pushes", "users",
            "ppg-allow-ip", "ppg-deny-ip", "ssl-server-cert-file", "ssl-server-key-file",
            "global-sender", "default-smsc", "default-dlr-url", "ppg-smsbox-id", "service-name",
        ],
    },
    GroupKeys {
        name: "wap-push-user",
        single: false,
        keys: &[
            "wap-push-user", "ppg-username", "ppg-password", "country-prefix", "allowed-prefix",
            "allowed-prefix-regex", "denied-prefix", "denied-prefix-regex", "white-list",
            "white-list-regex", "black-list-regex", "black-list", "deny-ip", "allow-ip",
            "forced-smsc", "default-smsc", "dlr-url", "smsbox-id",
        ],
    },
    GroupKeys {
        name: "test-ppg",
        single: true,
        keys: &[
            "retries", "pi-ssl", "ssl-client-certkey-file", "ssl-trusted-ca-file",
        ],
    },
    GroupKeys {
        name: "configuration",
        single: true,
        keys: &[
            "push-url", "content-file", "pap-file", "username", "password",
        ],
    },
    GroupKeys {
        name: "smsbox",
        single: true,
        keys: &[
            "smsbox-id", "bearerbox-host", "bearerbox-port", "bearerbox-port-ssl", "sendsms-port",
            "sendsms-port-ssl", "sendsms-interface", "sendsms-url", "sendota-url", "xmlrpc-url",
            "sendsms-chars", "global-sender", "log-file", "log-level", "syslog-level",
            "syslog-facility", "access-log", "access-log-time", "access-log-clean", "sms-length",
            "reply-couldnotfetch", "reply-couldnotrepresent", "reply-requestfailed",
            "reply-emptymessage", "allowed-prefix", "denied-prefix", "white-list", "black-list",
            "mo-recode", "http-request-retry", "http-queue-delay", "white-list-regex",
            "black-list-regex", "immediate-sendsms-reply", "max-pending-requests", "http-timeout",
        ],
    },
    GroupKeys {
        name: "smsbox-route",
        single: false,
        keys: &[
            "smsbox-id", "smsc-id", "shortcode",
        ],
    },
    GroupKeys {
        name: "smsc",
        single: false,
        keys: &[
            "smsc", "smsc-id", "smsc-admin-id", "denied-smsc-id", "allowed-smsc-id",
            "preferred-smsc-id", "allowed-prefix", "denied-prefix", "preferred-prefix",
            "unified-prefix", "reroute", "reroute-smsc-id", "reroute-receiver", "reroute-dlr",
            "log-file", "log-level", "log-format", "our-host", "alt-dcs", "throughput",
            "dead-start", "alt-charset", "host", "alt-host", "port", "use-ssl", "alt-port",
            "smsc-username", "smsc-password", "keepalive", "sim-buffering", "modemtype", "device",
            "speed", "validityperiod", "our-port", "receive-port", "our-receiver-port",
            "connect-allow-ip", "system-id", "system-type", "address-range", "smsc_nua", "home_nua",
            "wait_report", "ois-debug-level", "modem-type", "pin", "phone", "send-url", "dlr-url",
            "sender-prefix", "flow-control", "wait-ack", "wait-ack-expire", "no-sender",
            "no-coding", "window", "idle-timeout", "no-sep", "appname", "ussdc", "session-length",
            "my-number", "sms-center", "source-addr-ton", "source-addr-npi", "dest-addr-ton",
            "dest-addr-npi", "bind-addr-ton", "bind-addr-npi", "service-type", "esm-class",
            "source-addr-autodetect", "enquire-link-interval", "max-pending-submits",
            "reconnect-delay", "transceiver-mode", "interface-version", "priority",
            "notification-pid", "notification-addr", "msg-id-type", "no-dlr", "connection-timeout",
            "allowed-smsc-id-regex", "denied-smsc-id-regex", "preferred-smsc-id-regex",
            "allowed-prefix-regex", "denied-prefix-regex", "preferred-prefix-regex",
            "max-error-count", "alt-addr-charset", "status-success-regex", "status-permfail-regex",
            "status-tempfail-regex", "max-sms-octets", "login-prompt", "password-prompt",
            "ssl-client-certkey-file", "generic-param-username", "generic-param-password",
            "generic-param-from", "generic-param-to", "generic-param-text", "generic-param-udh",
            "generic-param-service", "generic-param-account", "generic-param-binfo",
            "generic-param-dlr-mask", "generic-param-dlr-err", "generic-param-dlr-url",
            "generic-param-dlr-mid", "generic-param-flash", "generic-param-mclass",
            "generic-param-mwi", "generic-param-coding", "generic-param-validity",
            "generic-param-deferred", "generic-param-foreign-id", "generic-param-meta-data",
            "generic-message-sent", "generic-status-sent", "generic-status-error",
            "generic-foreign-id-regex", "instances",
        ],
    },
    GroupKeys {
        name: "sms-service",
        single: false,
        keys: &[
            "name", "keyword", "aliases", "url", "get-url", "post-url", "post-xml", "file", "text",
            "exec", "accepted-smsc", "accepted-smsc-regex", "accepted-account",
            "accepted-account-regex", "forced-smsc", "default-smsc", "faked-sender", "max-messages",
            "concatenation", "split-chars", "split-suffix", "omit-empty", "header", "footer",
            "prefix", "suffix", "assume-plain-text", "accept-x-kannel-headers", "strip-keyword",
            "send-sender", "catch-all", "allowed-prefix", "allowed-prefix-regex", "denied-prefix",
            "denied-prefix-regex", "allowed-receiver-prefix", "allowed-receiver-prefix-regex",
            "denied-receiver-prefix", "denied-receiver-prefix-regex", "white-list",
            "white-list-regex", "black-list", "black-list-regex", "dlr-url", "dlr-mask",
            "keyword-regex", "alt-charset",
        ],
    },
    GroupKeys {
        name: "sendsms-user",
        single: false,
        keys: &[
            "name", "username", "password", "user-deny-ip", "user-allow-ip", "forced-smsc",
            "default-smsc", "faked-sender", "default-sender", "max-messages", "concatenation",
            "split-chars", "split-suffix", "omit-empty", "header", "footer", "allowed-prefix",
            "denied-prefix", "white-list", "black-list", "dlr-url", "allowed-prefix-regex",
            "denied-prefix-regex", "white-list-regex", "black-list-regex",
        ],
    },
    GroupKeys {
        name: "ota-setting",
        single: false,
        keys: &[
            "ota-id", "location", "service", "ipaddress", "phonenumber", "bearer", "connection",
            "calltype", "speed", "pppsecurity", "authentication", "login", "secret",
        ],
    },
    GroupKeys {
        name: "ota-bookmark",
        single: false,
        keys: &[
            "ota-id", "name", "url",
        ],
    },
    GroupKeys {
        name: "modems",
        single: false,
        keys: &[
            "id", "name", "detect-string", "detect-string2", "init-string", "speed", "enable-hwhs",
            "need-sleep", "no-pin", "no-smsc", "sendline-sleep", "keepalive-cmd", "broken",
            "message-storage", "message-start", "enable-mms", "reset-string",
            "hardware-flow-control",
        ],
    },
    GroupKeys {
        name: "mssql-connection",
        single: false,
        keys: &[
            "id", "username", "password", "server", "database", "max-connections",
        ],
    },
    GroupKeys {
        name: "mysql-connection",
        single: false,
        keys: &[
            "id", "host", "port", "username", "password", "database", "max-connections",
        ],
    },
    GroupKeys {
        name: "oracle-connection",
        single: false,
        keys: &[
            "id", "username", "password", "tnsname", "max-connections",
        ],
    },
    GroupKeys {
        name: "sdb-connection",
        single: false,
        keys: &[
            "id", "url", "max-connections",
        ],
    },
    GroupKeys {
        name: "pgsql-connection",
        single: false,
        keys: &[
            "id", "host", "port", "username", "password", "database", "max-connections",
        ],
    },
    GroupKeys {
        name: "sqlite-connection",
        single: false,
        keys: &[
            "id", "database", "max-connections", "lock-timeout",
        ],
    },
    GroupKeys {
        name: "sqlite3-connection",
        single: false,
        keys: &[
            "id", "database", "max-connections", "lock-timeout",
        ],
    },
    GroupKeys {
        name: "redis-connection",
        single: false,
        keys: &[
            "id", "host", "port", "password", "database", "max-connections", "idle-timeout",
        ],
    },
    GroupKeys {
        name: "cassandra-connection",
        single: false,
        keys: &[
            "id", "host", "port", "username", "password", "database", "max-connections",
            "idle-timeout",
        ],
    },
    GroupKeys {
        name: "dlr-db",
        single: true,
        keys: &[
            "id", "table", "ttl", "field-smsc", "field-timestamp", "field-source",
            "field-destination", "field-service", "field-url", "field-mask", "field-status",
            "field-boxc-id",
        ],
    },
    GroupKeys {
        name: "store-db",
        single: true,
        keys: &[
            "id", "table", "hash",
        ],
    },
    GroupKeys {
        name: "radius-acct",
        single: true,
        keys: &[
            "our-host", "our-port", "remote-host", "remote-port", "remote-timeout", "nas-ports",
            "secret-nas", "secret-radius", "unified-prefix",
        ],
    },
    GroupKeys {
        name: "smpp-tlv",
        single: false,
        keys: &[
            "name", "tag", "length", "type", "smsc-id", "const",
        ],
    },
];
