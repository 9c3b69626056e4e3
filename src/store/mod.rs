//! Everything that touches sled. For now the store holds the data directory open (so that two
//! brokers cannot share one) and offers the boundary the rest of the broker will call for
//! durability: metadata commands, message append/ack, group-commit sync, recovery.

use crate::error::BrokerError;
use std::path::Path;

/// The on-disk store of one broker.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
}

impl Store {
    /// Open (or create) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, BrokerError> {
        std::fs::create_dir_all(data_dir)?;
        let db = sled::Config::new().path(data_dir.join("store")).open()?;
        Ok(Store { db })
    }

    /// Flush outstanding writes (on shutdown).
    pub fn flush(&self) -> Result<(), BrokerError> {
        self.db.flush()?;
        Ok(())
    }
}
