//! The commands' arguments and glue (bin side): one module per command, and what several share.

pub mod capacity;
pub mod list;
pub mod mock_api;
pub mod mutation;
pub mod output;
pub mod parse;
pub mod prop;
pub mod read_limits;
pub mod ref_daemon;
pub mod report;
pub mod run;
pub mod stress;
pub mod target;
pub mod values;
