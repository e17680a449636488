//! Feeds arbitrary bytes to sendsms' XML POST reader (roxmltree, the
//! document's declared encoding, URL-decoded `<ud>`, hex `<udh>`), as the
//! body of an authorized-looking request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rapidbox::fuzzing::sendsms_xml(data));
