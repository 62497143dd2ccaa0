//! publish tests.
