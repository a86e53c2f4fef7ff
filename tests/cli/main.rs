//! Integration tests: one module per binary.
