//! Chain configuration: defaults, TOML file, per-field overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Longest block interval, in milliseconds: an hour.
pub const MAX_BLOCK_MS: u64 = 3_600_000;

/// Configuration of a [`Chain`](crate::Chain).
///
/// Every field has a default, may be set in a TOML file (same names, unknown keys are an error)
/// and may then be overridden field by field ([`ChainConfigOverrides`], e.g. from CLI flags):
///
/// ```toml
/// data_dir = "/var/lib/keyquorum/chain"   # relative paths are relative to the working directory
/// listen = "127.0.0.1:7450"
/// block_ms = 1000
/// max_tx_bytes = 1048576
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Directory holding the database (`chain.redb`); created if missing.
    pub data_dir: PathBuf,
    /// HTTP listen address. Port 0 picks a free port (see [`Chain::local_addr`](crate::Chain::local_addr)).
    pub listen: SocketAddr,
    /// Interval between blocks in milliseconds; a block is produced every interval, even empty.
    pub block_ms: u64,
    /// Largest accepted transaction (and `POST /tx` body) in bytes.
    pub max_tx_bytes: usize,
    /// Most transactions in one block.
    pub max_block_txs: usize,
    /// Most transaction bytes in one block (a single larger transaction still gets its own block).
    pub max_block_bytes: usize,
    /// Most transactions waiting in the mempool; beyond it `POST /tx` answers 503.
    pub max_pending_txs: usize,
    /// Most transaction bytes waiting in the mempool; beyond it `POST /tx` answers 503.
    pub max_pending_bytes: usize,
    /// Soft bound on the body of one `/events` response (at least one block is always returned).
    pub max_events_bytes: usize,
    /// Most blocks in one `/events` response.
    pub max_events_blocks: usize,
    /// Upper bound for the `wait_ms` long-poll parameter of `/events`.
    pub max_wait_ms: u64,
    /// The API has no authentication: listening on a non-loopback address must be asked for.
    pub allow_non_loopback: bool,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("keyquorum-chain"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7450)),
            block_ms: 1000,
            max_tx_bytes: 1 << 20,
            max_block_txs: 10_000,
            max_block_bytes: 8 << 20,
            max_pending_txs: 100_000,
            max_pending_bytes: 256 << 20,
            max_events_bytes: 4 << 20,
            max_events_blocks: 1000,
            max_wait_ms: 30_000,
            allow_non_loopback: false,
        }
    }
}

/// Errors reading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse or had unknown or mistyped fields.
    #[error("invalid config: {0}")]
    Parse(#[from] toml::de::Error),
    /// A field has an unusable value.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// Optional per-field replacements applied on top of the defaults or the file.
#[derive(Clone, Debug, Default)]
#[allow(missing_docs)]
pub struct ChainConfigOverrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub block_ms: Option<u64>,
    pub max_tx_bytes: Option<usize>,
    pub max_block_txs: Option<usize>,
    pub max_block_bytes: Option<usize>,
    pub max_pending_txs: Option<usize>,
    pub max_pending_bytes: Option<usize>,
    pub max_events_bytes: Option<usize>,
    pub max_events_blocks: Option<usize>,
    pub max_wait_ms: Option<u64>,
    pub allow_non_loopback: Option<bool>,
}

/// Copies each named field of an overrides struct (all `Option`s) into a configuration where it
/// is set: `override_fields!(config <- overrides; field, ...)`. Command-line flags of the chain
/// and of the node layer over their configuration files with it.
#[macro_export]
macro_rules! override_fields {
    ($config:ident <- $overrides:expr; $($field:ident),+ $(,)?) => {$(
        if let Some(value) = &$overrides.$field {
            $config.$field = value.clone();
        }
    )+};
}

impl ChainConfigOverrides {
    /// Replaces the fields of `config` that are set here.
    pub fn apply(&self, config: &mut ChainConfig) {
        crate::override_fields!(
            config <- self;
            data_dir,
            listen,
            block_ms,
            max_tx_bytes,
            max_block_txs,
            max_block_bytes,
            max_pending_txs,
            max_pending_bytes,
            max_events_bytes,
            max_events_blocks,
            max_wait_ms,
            allow_non_loopback
        );
    }
}

impl ChainConfig {
    /// Parses a TOML document; missing fields take their defaults.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Defaults, then `file` if given, then `overrides`; validated.
    pub fn load(
        file: Option<&Path>,
        overrides: &ChainConfigOverrides,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        overrides.apply(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Checks that every field is usable (`block_ms` in 1..=[`MAX_BLOCK_MS`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.block_ms == 0 {
            return bad("block_ms must be at least 1");
        }
        // A mistyped interval would start a chain that never makes a block, saying nothing.
        if self.block_ms > MAX_BLOCK_MS {
            return Err(ConfigError::Invalid(format!(
                "block_ms must be at most {MAX_BLOCK_MS} (an hour), not {}",
                self.block_ms
            )));
        }
        if self.max_tx_bytes == 0 || self.max_block_txs == 0 || self.max_pending_txs == 0 {
            return bad("max_tx_bytes, max_block_txs and max_pending_txs must be positive");
        }
        if self.max_pending_bytes < self.max_tx_bytes {
            return bad("max_pending_bytes must be at least max_tx_bytes");
        }
        if self.max_block_bytes == 0 || self.max_events_bytes == 0 || self.max_events_blocks == 0 {
            return bad("max_block_bytes, max_events_bytes and max_events_blocks must be positive");
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir must not be empty");
        }
        if !self.listen.ip().is_loopback() && !self.allow_non_loopback {
            return Err(ConfigError::Invalid(format!(
                "listen address {} is not loopback; the API is unauthenticated \
                 (set allow_non_loopback = true in the chain's configuration file, --config, to insist)",
                self.listen
            )));
        }
        Ok(())
    }

    /// Path of the database file inside `data_dir`.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("chain.redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides() {
        let mut c = ChainConfig::from_toml_str(
            "data_dir = \"/tmp/x\"\nlisten = \"127.0.0.1:9000\"\nblock_ms = 250\n",
        )
        .unwrap();
        assert_eq!(c.block_ms, 250);
        assert_eq!(c.max_tx_bytes, ChainConfig::default().max_tx_bytes);
        let o = ChainConfigOverrides {
            block_ms: Some(50),
            data_dir: Some("/tmp/y".into()),
            ..Default::default()
        };
        o.apply(&mut c);
        assert_eq!(c.block_ms, 50);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));
        assert_eq!(c.listen.port(), 9000);
        c.validate().unwrap();
    }

    #[test]
    fn rejects_bad_values() {
        assert!(ChainConfig::from_toml_str("block_ms = \"fast\"").is_err());
        assert!(ChainConfig::from_toml_str("unknown_key = 1").is_err());
        let c = ChainConfig::from_toml_str("block_ms = 0").unwrap();
        assert!(c.validate().is_err());
        let c = ChainConfig::from_toml_str(&format!("block_ms = {}", MAX_BLOCK_MS + 1)).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("block_ms must be at most")
        );
        ChainConfig::from_toml_str(&format!("block_ms = {MAX_BLOCK_MS}"))
            .unwrap()
            .validate()
            .unwrap();
        let c = ChainConfig::from_toml_str("listen = \"0.0.0.0:1\"").unwrap();
        assert!(c.validate().is_err());
        let c = ChainConfig::from_toml_str("listen = \"0.0.0.0:1\"\nallow_non_loopback = true")
            .unwrap();
        c.validate().unwrap();
    }
}
