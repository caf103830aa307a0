//! cnh-hub: the GraphQL data-exchange hub of the plan of 50 000 new solutions for disabled people (2024-2030).
//!
//! The crate is organised by capability (`territory`, then `auth`, `programming`, `needs`, `school`,
//! `reconciliation`, `exchange`, `audit` as they land), each with its GraphQL types, its service logic and its tests.
//! Shared infrastructure sits at the root: configuration, errors, the schema and the HTTP application.
//! Pure domain logic (money, annex checks) has no HTTP or database inside so it can be tested and benchmarked alone.
//! French administrative terms without an English twin are kept and explained once, in [`glossary`].

pub mod access;
pub mod app;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod campaigns;
pub mod config;
pub mod context;
pub mod db;
pub mod demo;
pub mod error;
pub mod exchange;
pub mod files;
pub mod glossary;
pub mod graphql;
pub mod http;
pub mod kernel;
pub mod money;
pub mod needs;
pub mod observe;
pub mod pages;
pub mod pagination;
pub mod programming;
pub mod pulls;
pub mod reconciled;
pub mod reconciliation;
pub mod records;
pub mod routes;
pub mod school;
pub mod secrets;
pub mod selection;
pub mod steering;
pub mod territory;
pub mod validation;
pub mod vocabulary;

pub use app::{App, StartupError};
pub use config::{Config, ConfigError, Profile, Settings};
