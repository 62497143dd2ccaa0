//! A real `arcus serve` process for end-to-end tests (filled in by the e2e-test work).
