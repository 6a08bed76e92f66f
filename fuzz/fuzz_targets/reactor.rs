#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ctrlchan_fuzz::reactor(data));
