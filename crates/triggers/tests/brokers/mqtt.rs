//! mqtt tests.
