//! One module per subcommand of the `llmhub` binary, and what several of them share (logging,
//! the allocator setting, signals, the traffic options).

pub(crate) mod check_config;
pub(crate) mod dashboards;
pub(crate) mod demo;
pub(crate) mod loadgen;
pub(crate) mod man;
pub(crate) mod prices;
pub(crate) mod process;
pub(crate) mod serve;
pub(crate) mod traffic;
