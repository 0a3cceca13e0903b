//! The PostgreSQL/TimescaleDB sink.
