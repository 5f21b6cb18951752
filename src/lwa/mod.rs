//! lwa (work in progress)
