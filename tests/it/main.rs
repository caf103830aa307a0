//! Integration tests of the real server over HTTP: one binary, one module per capability.

#[macro_use]
mod support;

mod architecture;
mod auth;
mod authorization;
mod browser;
mod cofinancers;
mod credentials;
mod demo;
mod errors;
mod fast_reads;
mod federation;
mod files;
mod hostile;
mod http_spec;
mod live;
mod masking;
mod observability;
mod outages;
mod pages;
mod programming;
mod pulls;
mod reconciliation;
mod reference_data;
mod schema_contract;
mod startup;
mod statements;
mod steering;
mod steering_pack;
mod submissions;
mod webhooks;
