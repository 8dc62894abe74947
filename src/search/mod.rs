//! Search: to be written.
