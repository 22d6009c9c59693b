#![no_main]

libfuzzer_sys::fuzz_target!(
    init: bpfld_fuzz::MASK_KNOWN_BUGS.store(true, std::sync::atomic::Ordering::Relaxed),
    |data: &[u8]| bpfld_fuzz::pcap(data)
);
