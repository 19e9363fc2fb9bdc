//! Integration tests for `geecache-group`: one binary, one module per concern.

mod support;

mod batch;
mod cluster;
mod coalesce;
mod expiry;
mod health;
mod hot;
mod local;
mod model;
mod standin;
mod writes;
