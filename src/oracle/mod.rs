//! The oracle: stage 1 proves a kernel on the emulator over every weak ordering; stage 2 runs
//! the JIT-assembled machine code on the real CPU.

pub mod native;
