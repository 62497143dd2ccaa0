//! In-process engine on a temporary data dir (filled in by the router-test work).
