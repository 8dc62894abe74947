//! Game: to be written.
