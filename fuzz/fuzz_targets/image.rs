#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfld_fuzz::image(data));
