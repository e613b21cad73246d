//! The scenario catalog, one file per category.
