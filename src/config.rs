//! Broker configuration (work in progress).
