//! Feeds arbitrary bytes to the HTTP server's request parsing: the query
//! string and form reader every endpoint uses, and sendsms' reading of a
//! GET, a POST form, `X-Kannel-*` headers, octet-stream and XML bodies.
//! The invariants checked live in `rapidbox::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rapidbox::fuzzing::params(data);
    rapidbox::fuzzing::sendsms(data);
});
