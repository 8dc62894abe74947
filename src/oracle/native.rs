//! Stage 2: to be written.
