//! Empty on purpose: the programs live in the `classifier-ebpf` binary (src/main.rs).
#![no_std]
