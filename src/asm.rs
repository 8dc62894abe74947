//! Assembly front end: to be written.
