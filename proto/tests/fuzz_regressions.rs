//! Replays every input the fuzzer (`fuzz/`, target `frame_decoder`) ever
//! crashed on or that we keep as a hard case, through the same checks.
//! Files live in `tests/fuzz-regressions/`; add a crash there by copying it
//! from `fuzz/artifacts/frame_decoder/`.

mod common {
    pub mod fuzz_check;
}

use std::fs;
use std::path::Path;

#[test]
fn every_kept_fuzz_input_passes_the_fuzz_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in fs::read_dir(&dir).expect("the regression folder exists") {
        let path = entry.expect("readable folder").path();
        let data = fs::read(&path).expect("readable input");
        let result = std::panic::catch_unwind(|| common::fuzz_check::check(&data));
        assert!(result.is_ok(), "{} fails the fuzz checks", path.display());
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}
