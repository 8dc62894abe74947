//! # superopt
//!
//! A superoptimizer that discovers short x86-64 kernels (sort3, sort4, sort5, ...) the way
//! AlphaDev did (Mankowitz et al., "Faster sorting algorithms discovered using deep
//! reinforcement learning", Nature 618:257, 2023): writing a program is a single-player game
//! whose moves are instructions, the state is the program so far plus the CPU state on every
//! test vector, and Monte-Carlo tree search with PUCT plays it. Every candidate is executed on
//! every test vector; a kernel is called *verified* only when the emulator has proved it on all
//! weak orderings of its inputs (a proof for mov/cmp/cmov programs, see [`task::weak_orderings`])
//! **and** the JIT-assembled machine code passed exhaustive, extreme and random inputs with
//! poisoned scratch registers (see [`oracle`]).
//!
//! Flow, one way only: [`task`] → [`game`] → [`search`] (⇄ an [`search::Evaluator`]) →
//! [`oracle`] → search log → export. The search is generic over [`search::Environment`] and
//! knows nothing of x86.

#![warn(missing_docs)]

pub mod asm;
pub mod cli;
pub mod error;
pub mod export;
pub mod game;
pub mod isa;
pub mod latency;
pub mod log;
pub mod net;
pub mod oracle;
pub mod plot;
pub mod search;
pub mod task;
pub mod tool;

pub use error::{Error, Result};
pub use isa::{Cond, Insn, Reg};
pub use task::Task;
