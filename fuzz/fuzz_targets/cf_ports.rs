#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sgbridge::fuzzing::cf_ports(data));
