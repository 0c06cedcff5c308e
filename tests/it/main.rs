//! The integration tests, one binary (one link of the crate, one process
//! whose tests run side by side): each module is a suite, `support` is what
//! they share (gateways in process and as processes, clients, scripted
//! backends and emulators, a PostgreSQL, the UAA's keys, the repository's
//! test data).

mod support;

mod audit_events;
mod cf_api;
mod cf_backend;
mod cf_cli;
mod cf_cli_v8;
mod cf_v3;
mod chain;
mod cli;
mod conformance;
mod connections;
mod emulator;
mod faults;
mod fuzz_corpus;
mod gcore_api;
mod layering;
mod lifecycle;
mod login;
mod malformed;
mod operations;
mod pg_tls;
mod polling;
mod properties;
mod proxy;
mod readme;
mod replicas;
mod security;
mod serve;
mod store;
mod ui;
mod write_path;
