//! redis tests.
