#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrlchan_fuzz::adaptive_store(data));
