//! broker (work in progress)
