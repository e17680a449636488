//! Feeds arbitrary bytes to boxproto's frame decoder, in pieces, the way a
//! socket delivers them. The oracle lives with boxproto's tests so that the
//! regression test replays crashes with exactly the same checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proto/tests/common/fuzz_check.rs"]
mod fuzz_check;

fuzz_target!(|data: &[u8]| fuzz_check::check(data));
