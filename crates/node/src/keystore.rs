//! The encrypted keystore: one JSON file holding the node's master seed (see [`crate::keys`])
//! encrypted under a passphrase.
//!
//! ```text
//! key = Argon2id(passphrase, salt, m_cost_kib, t_cost, p_cost) -> 32 bytes
//! ciphertext = ChaCha20-Poly1305(key, nonce, master seed, aad = header)
//! ```
//!
//! The header (format version, KDF parameters, salt and the public identity key) is the AEAD's
//! associated data, so lowering the KDF cost or swapping the public key in the file makes
//! decryption fail instead of silently weakening or mislabelling the key. A wrong passphrase and
//! a tampered file give the same error; nothing says which.
//!
//! The passphrase comes from a file or an environment variable ([`PassphraseSource`]), never
//! from a command-line argument (visible to every user in the process list). It is held in a
//! [`Passphrase`] that is wiped on drop and redacted in `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::{MASTER_SEED_LEN, NodeKeys};

/// Environment variable read by default when no passphrase file is given.
pub const DEFAULT_PASSPHRASE_ENV: &str = "KEYQUORUM_PASSPHRASE";

const FORMAT: &str = "keyquorum-keystore-v1";

/// Keystore errors. None of them carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// Reading or writing the file failed.
    #[error("keystore {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a keystore of this format.
    #[error("keystore {0}: not a keyquorum keystore ({1})")]
    Format(PathBuf, String),
    /// Wrong passphrase or tampered file.
    #[error("keystore {0}: wrong passphrase or corrupted file")]
    Decrypt(PathBuf),
    /// KDF parameters out of range.
    #[error("invalid key derivation parameters: {0}")]
    Kdf(String),
    /// Refusing to overwrite.
    #[error("keystore {0} exists; refusing to overwrite")]
    Exists(PathBuf),
    /// No passphrase available.
    #[error("passphrase: {0}")]
    Passphrase(String),
}

/// A passphrase: wiped on drop, redacted in `Debug`.
pub struct Passphrase(Zeroizing<String>);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl Passphrase {
    /// Wraps a passphrase (from a test or a prompt).
    pub fn new(s: impl Into<String>) -> Self {
        Passphrase(Zeroizing::new(s.into()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Where the passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// The first line of a file (a trailing newline is not part of it).
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl PassphraseSource {
    /// Reads the passphrase. Empty passphrases are refused.
    pub fn read(&self) -> Result<Passphrase, KeystoreError> {
        let raw = match self {
            PassphraseSource::File(p) => {
                Zeroizing::new(std::fs::read_to_string(p).map_err(|source| {
                    KeystoreError::Passphrase(format!("passphrase file {}: {source}", p.display()))
                })?)
            }
            PassphraseSource::Env(name) => Zeroizing::new(std::env::var(name).map_err(|_| {
                KeystoreError::Passphrase(format!(
                    "environment variable {name} is not set (or not UTF-8); \
                     set it or use --passphrase-file"
                ))
            })?),
        };
        let line = raw.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(KeystoreError::Passphrase("the passphrase is empty".into()));
        }
        Ok(Passphrase::new(line))
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (OWASP's Argon2id recommendation is at least 19 MiB, 2 passes).
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Cheap parameters for throwaway keys (demo, tests): 8 MiB, 1 pass. Still Argon2id, still
    /// a real passphrase check.
    pub fn light() -> Self {
        KdfParams {
            m_cost_kib: 8 * 1024,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Whether these parameters can derive a key: within Argon2id's own bounds, and within
    /// ours (at most 4 GiB, 64 passes, 16 lanes), which keep a hostile file from asking for
    /// terabytes of memory.
    pub fn check(&self) -> Result<(), KeystoreError> {
        self.argon2_params().map(|_| ())
    }

    fn argon2_params(&self) -> Result<Params, KeystoreError> {
        if self.m_cost_kib > 4 * 1024 * 1024 || self.t_cost > 64 || self.p_cost > 16 {
            return Err(KeystoreError::Kdf(
                "cost parameters too large (at most 4194304 KiB, 64 passes, 16 lanes)".into(),
            ));
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32)).map_err(|e| {
            KeystoreError::Kdf(format!(
                "{e} (Argon2id takes at least {} KiB for {} lane(s) and at least 1 pass)",
                Params::MIN_M_COST.max(8 * self.p_cost),
                self.p_cost
            ))
        })
    }

    fn derive(
        &self,
        passphrase: &Passphrase,
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let params = self.argon2_params()?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.bytes(), salt, key.as_mut())
            .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
        Ok(key)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeystoreFile {
    format: String,
    kdf: String,
    kdf_params: KdfParams,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
    /// Public, for operators: which identity this file holds.
    identity: String,
    /// Public, for operators: the libp2p peer id the node will use.
    peer_id: String,
}

fn aad(params: &KdfParams, salt_hex: &str, identity_hex: &str) -> Vec<u8> {
    format!(
        "{FORMAT}|argon2id|{}|{}|{}|{salt_hex}|chacha20poly1305|{identity_hex}",
        params.m_cost_kib, params.t_cost, params.p_cost
    )
    .into_bytes()
}

/// Encrypts `keys` into a keystore file (refusing to overwrite one). The file is created with
/// mode 0600 on Unix.
pub fn write(
    path: &Path,
    keys: &NodeKeys,
    passphrase: &Passphrase,
    params: KdfParams,
) -> Result<(), KeystoreError> {
    if path.exists() {
        return Err(KeystoreError::Exists(path.to_owned()));
    }
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let key = params.derive(passphrase, &salt)?;
    let salt_hex = hex::encode(salt);
    let identity_hex = hex::encode(keys.identity().public().as_bytes());
    let ciphertext = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: keys.master(),
                aad: &aad(&params, &salt_hex, &identity_hex),
            },
        )
        .map_err(|_| KeystoreError::Kdf("encryption failed".into()))?;
    let file = KeystoreFile {
        format: FORMAT.into(),
        kdf: "argon2id".into(),
        kdf_params: params,
        salt: salt_hex,
        cipher: "chacha20poly1305".into(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
        identity: identity_hex,
        peer_id: keys.peer_id().to_string(),
    };
    let json = serde_json::to_string_pretty(&file).expect("keystore serializes");
    let io = |source| KeystoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(io)?;
    use std::io::Write;
    f.write_all(json.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// The identity key a keystore file names in clear, without its passphrase: for showing the
/// account of the file's node. The field is not authenticated until the file is decrypted
/// ([`read`] checks it then), so whatever must be signed by this identity opens the file with
/// [`read`] instead.
pub fn read_identity(
    path: &Path,
) -> Result<keyquorum_dkg::identity::IdentityPublicKey, KeystoreError> {
    let file = load(path)?;
    let format = |m: &str| KeystoreError::Format(path.to_owned(), m.to_string());
    if file.format != FORMAT {
        return Err(format("unsupported format"));
    }
    let bytes = hex::decode(&file.identity).map_err(|_| format("identity"))?;
    keyquorum_dkg::identity::IdentityPublicKey::from_bytes(&bytes)
        .map_err(|e| format(&format!("identity: {e}")))
}

/// A keystore file's fields, not checked yet.
fn load(path: &Path) -> Result<KeystoreFile, KeystoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeystoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| KeystoreError::Format(path.to_owned(), e.to_string()))
}

/// Decrypts a keystore file.
pub fn read(path: &Path, passphrase: &Passphrase) -> Result<NodeKeys, KeystoreError> {
    let file = load(path)?;
    let format = |m: &str| KeystoreError::Format(path.to_owned(), m.to_string());
    if file.format != FORMAT || file.kdf != "argon2id" || file.cipher != "chacha20poly1305" {
        return Err(format("unsupported format, KDF or cipher"));
    }
    let salt = hex::decode(&file.salt).map_err(|_| format("salt"))?;
    let nonce = hex::decode(&file.nonce).map_err(|_| format("nonce"))?;
    let ct = hex::decode(&file.ciphertext).map_err(|_| format("ciphertext"))?;
    if salt.len() < 16 || nonce.len() != 12 {
        return Err(format("salt or nonce length"));
    }
    let key = file.kdf_params.derive(passphrase, &salt)?;
    let plain = Zeroizing::new(
        ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad(&file.kdf_params, &file.salt, &file.identity),
                },
            )
            .map_err(|_| KeystoreError::Decrypt(path.to_owned()))?,
    );
    let master: &[u8; MASTER_SEED_LEN] = plain
        .as_slice()
        .try_into()
        .map_err(|_| format("plaintext length"))?;
    let keys = NodeKeys::from_master(master);
    // The AAD already binds the identity; this catches a file written by another derivation.
    if hex::encode(keys.identity().public().as_bytes()) != file.identity {
        return Err(format("identity does not match the key"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let keys = NodeKeys::generate();
        let pass = Passphrase::new("correct horse battery staple");
        write(&path, &keys, &pass, KdfParams::light()).unwrap();
        let back = read(&path, &pass).unwrap();
        assert_eq!(back.identity().public(), keys.identity().public());
        // The identity in clear is the key's, without the passphrase.
        assert_eq!(&read_identity(&path).unwrap(), keys.identity().public());
        assert_eq!(back.peer_id(), keys.peer_id());
        assert!(matches!(
            read(&path, &Passphrase::new("wrong")),
            Err(KeystoreError::Decrypt(_))
        ));
        // Never overwrite a key.
        assert!(matches!(
            write(&path, &keys, &pass, KdfParams::light()),
            Err(KeystoreError::Exists(_))
        ));
    }

    #[test]
    fn tampered_parameters_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let keys = NodeKeys::generate();
        let pass = Passphrase::new("pw");
        write(&path, &keys, &pass, KdfParams::light()).unwrap();
        let mut file: KeystoreFile =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        // Changing the work factor is caught by the AEAD.
        assert_eq!(file.kdf_params.t_cost, 1);
        file.kdf_params.t_cost = 2;
        std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
        assert!(matches!(read(&path, &pass), Err(KeystoreError::Decrypt(_))));
    }

    #[test]
    fn secrets_are_redacted_and_absent_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let keys = NodeKeys::from_master(&[0x42; 32]);
        let pass = Passphrase::new("hunter2");
        write(&path, &keys, &pass, KdfParams::light()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode([0x42u8; 32])));
        assert!(!text.contains("hunter2"));
        assert_eq!(format!("{pass:?}"), "Passphrase(<redacted>)");
        let err = read(&path, &Passphrase::new("nope"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("nope") && !err.contains("hunter2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn passphrase_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "from-file\n").unwrap();
        let p = PassphraseSource::File(file.clone()).read().unwrap();
        assert_eq!(p.bytes(), b"from-file");
        std::fs::write(&file, "\n").unwrap();
        assert!(PassphraseSource::File(file).read().is_err());
        // A missing passphrase file is named as one, not as the keystore.
        let missing = dir.path().join("missing");
        let err = PassphraseSource::File(missing.clone())
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("passphrase: passphrase file")
                && err.contains(&missing.display().to_string())
                && !err.contains("keystore"),
            "{err}"
        );
        assert!(
            PassphraseSource::Env("KEYQUORUM_TEST_SURELY_UNSET_VAR".into())
                .read()
                .is_err()
        );
    }
}
