//! `keyquorum account`: a node's account on the embedded chain, as its operator manages it.
//!
//! The node itself sends only what the protocol needs (its registration, its posts, the claim
//! of unbonded stake once due). Moving value is the operator's decision, so it is a command:
//! `show` reads an account (`GET /query/accounts/{identity}`); `transfer`, `stake`, `unbond`,
//! `deregister` and `claim` sign one transaction with the node's identity key (from its
//! keystore) and the account's next nonce as the chain reports it, submit it, and wait for
//! the block that applies it. The contract's refusal (`insufficient_balance`, `stake_locked`,
//! ...) is printed with its code and fails the run; nothing changed then. A submission whose
//! answer is lost is looked up by its hash until it is seen, or known never received; a run
//! that gives up says whether the transaction may still apply. With the node's
//! `chain_config_digest` (or `--chain-config-digest`), nothing is signed for a chain that runs
//! another configuration.
//!
//! A running node numbers its own transactions from the same account. Its sends and this
//! command's may take the same nonce: the chain applies one and refuses the other as a bad
//! nonce, and both sides sign again with the next (this command up to
//! [`NONCE_ATTEMPTS`] times). A running node does not undo a `deregister`: it does not register
//! again by itself after its own deregistration, unless started once with `--rejoin`. A member
//! whose stake is locked leaves instead of being refused: it is no longer selected and is
//! deregistered once its stake is free.
//!
//! On an EVM chain the stake is the coordinator's, moved from the node's chain key with the
//! contract's own calls (`addStake`, `unbond`, `withdraw`), which any wallet sends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use keyquorum_contract::query::Account;
use keyquorum_contract::tx::{Transaction, TxBody};
use keyquorum_devchain::api::TxLookup;
use keyquorum_devchain::client::{Client, ClientError};
use keyquorum_dkg::identity::IdentityPublicKey;

use crate::cli::{CliError, EXIT_CODES};
use crate::config::{ChainKind, NodeConfig, NodeConfigOverrides};
use crate::keystore;

/// How many times a transaction is signed again after another sender from the same account
/// (the node) took its nonce.
pub const NONCE_ATTEMPTS: usize = 5;

/// How long a submitted transaction is waited for before the run fails (it may still be
/// applied later: `show` tells).
pub const INCLUSION_WAIT: Duration = Duration::from_secs(60);

/// Arguments of `keyquorum account`.
#[derive(Args, Debug, Clone)]
pub struct AccountArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AccountCommand,
}

/// `keyquorum account` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum AccountCommand {
    /// Show an account: free balance, stake, registration, unbonding amounts, next nonce.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The account's identity key (hex); without it, the keystore's.
        #[arg(long, value_name = "HEX")]
        identity: Option<String>,
        /// The node and its chain.
        #[command(flatten)]
        node: NodeSelection,
    },
    /// Move free balance to another identity (its account is created if new).
    #[command(after_help = EXIT_CODES)]
    Transfer {
        /// The recipient's identity key (hex).
        #[arg(long, value_name = "HEX")]
        to: String,
        /// The amount.
        #[arg(long)]
        amount: u64,
        /// The node and its chain.
        #[command(flatten)]
        node: NodeSelection,
    },
    /// Lock more of the free balance as stake (the node must be registered).
    #[command(after_help = EXIT_CODES)]
    Stake {
        /// The amount added.
        #[arg(long)]
        amount: u64,
        /// The node and its chain.
        #[command(flatten)]
        node: NodeSelection,
    },
    /// Take stake out of selection at once; it returns to the balance with `claim` after the
    /// chain's unbonding period (`show` lists when).
    #[command(after_help = EXIT_CODES)]
    Unbond {
        /// The amount.
        #[arg(long)]
        amount: u64,
        /// The node and its chain.
        #[command(flatten)]
        node: NodeSelection,
    },
    /// Leave the registry: the whole stake starts unbonding. A member of the active view or of
    /// a running ceremony is no longer selected and leaves once its stake is free; the node
    /// does not register again (start it once with `--rejoin` to).
    #[command(after_help = EXIT_CODES)]
    Deregister {
        /// The node and its chain.
        #[command(flatten)]
        node: NodeSelection,
    },
    /// Cancel a scheduled deregistration (a `deregister` sent while the node's stake was
    /// locked, which has not taken effect yet): the node stays registered and is selected
    /// again from the next committee on.
    #[command(after_help = EXIT_CODES)]
    CancelLeave {
        /// The node and its chain.
        #[command(flatten)]
        node: NodeSelection,
    },
    /// Return every unbonding amount whose period is over to the balance (a running node
    /// that re-executes the chain, the default, also does this by itself).
    #[command(after_help = EXIT_CODES)]
    Claim {
        /// The node and its chain.
        #[command(flatten)]
        node: NodeSelection,
    },
}

/// Which node's account, and where its chain is: the node's own settings, from its
/// configuration file or the same flags as `keyquorum node`.
#[derive(Args, Debug, Clone)]
pub struct NodeSelection {
    /// The node's configuration file (TOML), for its chain URL, keystore and passphrase
    /// settings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The chain's HTTP API [default: http://127.0.0.1:7450]; `chain_url` in the file.
    #[arg(long)]
    pub chain_url: Option<String>,
    /// The embedded chain's contract configuration to expect (SHA-256 of its JSON, hex, as
    /// `keyquorum chain` prints it): nothing is signed for a chain that runs another;
    /// `chain_config_digest` in the file.
    #[arg(long, value_name = "HEX")]
    pub chain_config_digest: Option<String>,
    /// Encrypted keystore [default: node.key]; `key_file` in the file.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// File holding the keystore passphrase.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase (default KEYQUORUM_PASSPHRASE).
    #[arg(long)]
    pub passphrase_env: Option<String>,
}

impl NodeSelection {
    fn load(&self) -> Result<NodeConfig, CliError> {
        let o = NodeConfigOverrides {
            chain_url: self.chain_url.clone(),
            chain_config_digest: self.chain_config_digest.clone(),
            key_file: self.key_file.clone(),
            passphrase_file: self.passphrase_file.clone(),
            passphrase_env: self.passphrase_env.clone(),
            ..Default::default()
        };
        let config = crate::cli::load_config(self.config.as_deref(), &o)?;
        if config.chain == ChainKind::Evm {
            return Err(CliError::Usage(
                "keyquorum account manages accounts on the embedded chain; on an EVM chain the \
                 stake is the coordinator's, moved from the node's chain key with the \
                 contract's calls (addStake, unbond, withdraw)"
                    .into(),
            ));
        }
        Ok(config)
    }
}

/// What an applied transaction did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The block that applied it.
    pub height: u64,
    /// Its events, as the chain reports them.
    pub events: Vec<serde_json::Value>,
    /// How many times it was signed: more than once when another sender from the account
    /// took the nonce.
    pub attempts: usize,
}

/// Why a transaction did not apply, or could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The contract refused it (at submission or in its block): nothing changed.
    #[error("refused by the chain ({code}): {reason}")]
    Refused {
        /// The contract's code.
        code: String,
        /// Its explanation.
        reason: String,
    },
    /// Another sender from this account kept taking the nonce.
    #[error("the nonce was taken {NONCE_ATTEMPTS} times by another sender from this account")]
    NonceContention,
    /// Submitted (or its submission's answer lost), and not seen in a block within
    /// [`INCLUSION_WAIT`].
    #[error(
        "transaction {hash} was submitted and not seen in a block after {}s: it may still be \
         applied, so check with `keyquorum account show` before sending it again",
        INCLUSION_WAIT.as_secs()
    )]
    NotIncluded {
        /// Its hash, hex.
        hash: String,
    },
    /// The submission failed and the chain does not know the transaction: nothing was sent.
    #[error(
        "the chain did not take transaction {hash} ({error}); nothing was sent, so the command \
         can be run again"
    )]
    NotAccepted {
        /// Its hash, hex.
        hash: String,
        /// Why the submission failed.
        error: String,
    },
    /// The chain could not be asked.
    #[error("{0}")]
    Chain(#[from] ClientError),
}

fn is_nonce(code: &str) -> bool {
    code == "bad_nonce" || code == "stale_nonce"
}

/// The account of `identity`.
pub async fn account(
    client: &Client,
    identity: &IdentityPublicKey,
) -> Result<Account, ClientError> {
    client
        .get(&format!(
            "/query/accounts/{}",
            hex::encode(identity.to_bytes())
        ))
        .await
}

/// Signs `body` from `key`'s account with its next nonce, submits it and waits for its block;
/// signs again when another sender from the account took the nonce. A submission whose answer
/// is lost is looked up by its hash, never sent again with another nonce: that could apply it
/// twice.
pub async fn send(
    client: &Client,
    chain_id: &str,
    key: &keyquorum_dkg::identity::IdentityKeypair,
    body: TxBody,
) -> Result<Applied, AccountError> {
    for attempt in 1..=NONCE_ATTEMPTS {
        let nonce = account(client, key.public()).await?.nonce;
        let tx = Transaction::sign(chain_id, key, nonce, body.clone()).encode();
        let hash = keyquorum_contract::tx::tx_hash(&tx);
        let lost = match client.submit(tx).await {
            Ok(_) => None,
            Err(ClientError::Api { code, .. }) if is_nonce(&code) => continue,
            // 400 is the contract's pre-check; other refusals (busy, too large) are the
            // chain's and fail the run as they are: either way the chain did not take it.
            Err(ClientError::Api {
                status: 400,
                code,
                reason,
                ..
            }) => return Err(AccountError::Refused { code, reason }),
            Err(e @ ClientError::Api { .. }) => return Err(e.into()),
            // No answer: the chain may have taken it.
            Err(e) => Some(e),
        };
        match wait_for_block(client, &hash, lost).await? {
            Some((height, events)) => {
                return Ok(Applied {
                    height,
                    events,
                    attempts: attempt,
                });
            }
            None => continue,
        }
    }
    Err(AccountError::NonceContention)
}

/// How long a transaction whose submission got no answer may stay unknown to the chain before
/// it is taken as never received.
const UNKNOWN_AFTER_LOST_ANSWER: Duration = Duration::from_secs(5);

/// Waits for the block that applies transaction `hash`: its height and events, or `None` when
/// the chain refused it for a nonce another sender took. `lost` is the error of a submission
/// that got no answer.
async fn wait_for_block(
    client: &Client,
    hash: &[u8; 32],
    lost: Option<ClientError>,
) -> Result<Option<(u64, Vec<serde_json::Value>)>, AccountError> {
    let started = Instant::now();
    loop {
        match client.tx(hash).await {
            Ok(TxLookup::Pending { .. }) => {}
            Ok(TxLookup::Included {
                rejected: Some(r), ..
            }) if is_nonce(&r.code) => return Ok(None),
            Ok(TxLookup::Included {
                rejected: Some(r), ..
            }) => {
                return Err(AccountError::Refused {
                    code: r.code,
                    reason: r.reason,
                });
            }
            Ok(TxLookup::Included { height, events, .. }) => return Ok(Some((height, events))),
            Err(ClientError::Api { status: 404, .. })
                if lost.is_some() && started.elapsed() > UNKNOWN_AFTER_LOST_ANSWER =>
            {
                return Err(AccountError::NotAccepted {
                    hash: hex::encode(hash),
                    error: lost.map(|e| e.to_string()).unwrap_or_default(),
                });
            }
            // Unknown for now, or no answer: asked again until the wait is over.
            Err(_) => {}
        }
        if started.elapsed() > INCLUSION_WAIT {
            return Err(AccountError::NotIncluded {
                hash: hex::encode(hash),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn parse_identity(flag: &str, hex_key: &str) -> Result<IdentityPublicKey, CliError> {
    let bytes = hex::decode(hex_key.trim())
        .map_err(|e| CliError::Usage(format!("{flag} {hex_key:?}: not hex: {e}")))?;
    IdentityPublicKey::from_bytes(&bytes)
        .map_err(|e| CliError::Usage(format!("{flag} {hex_key:?}: not an identity key: {e}")))
}

fn print_account(a: &Account) {
    println!("identity   {}", hex::encode(a.identity.0));
    println!("balance    {}", a.balance);
    println!(
        "stake      {}{}",
        a.stake,
        if a.leaving {
            " (registered, leaving: deregistered once its stake is free; \
             `keyquorum account cancel-leave` stays)"
        } else if a.registered {
            " (registered)"
        } else {
            " (not registered)"
        }
    );
    for u in &a.unbonding {
        println!(
            "unbonding  {} (claimable once view {} is active)",
            u.amount, u.release_view
        );
    }
    println!("nonce      {}", a.nonce);
}

/// `keyquorum account`.
pub fn run(args: AccountArgs) -> Result<(), CliError> {
    let (node, identity, body) = match args.command {
        AccountCommand::Show { identity, node } => (node, identity, None),
        AccountCommand::Transfer { to, amount, node } => {
            let to = parse_identity("--to", &to)?;
            (node, None, Some(TxBody::Transfer { to, amount }))
        }
        AccountCommand::Stake { amount, node } => (node, None, Some(TxBody::AddStake { amount })),
        AccountCommand::Unbond { amount, node } => (node, None, Some(TxBody::Unbond { amount })),
        AccountCommand::Deregister { node } => (node, None, Some(TxBody::Deregister)),
        AccountCommand::CancelLeave { node } => (node, None, Some(TxBody::CancelLeave)),
        AccountCommand::Claim { node } => (node, None, Some(TxBody::ClaimUnbonded)),
    };
    let config = node.load()?;
    let mut identity = identity
        .map(|h| parse_identity("--identity", &h))
        .transpose()?;
    let client = Client::new(&config.chain_url).map_err(CliError::usage)?;
    // Showing an account needs only the identity the keystore names in clear; the keystore is
    // decrypted only when its key signs.
    if identity.is_none() && body.is_none() {
        identity = Some(keystore::read_identity(&config.key_file).map_err(CliError::failed)?);
    }
    let keys = if body.is_some() {
        let pass = config
            .passphrase_source()
            .read()
            .map_err(CliError::failed)?;
        let keys = keystore::read(&config.key_file, &pass).map_err(CliError::failed)?;
        drop(pass);
        Some(keys)
    } else {
        None
    };
    let pinned = config.pinned_chain_config().map_err(CliError::usage)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    rt.block_on(async move {
        let failed = |e: ClientError| CliError::Failed(format!("{}: {e}", config.chain_url));
        let who = match (identity, &keys) {
            (Some(id), _) => id,
            (None, Some(k)) => k.identity().public().clone(),
            (None, None) => {
                return Err(CliError::Usage(
                    "--identity or a keystore is needed to name the account".into(),
                ));
            }
        };
        // A transaction signed for the wrong chain could be replayed on the right one if
        // their ids agree, and an account read from it is another chain's: with a pinned
        // configuration, the chain must run it, and a signature binds its chain id.
        let mut pinned_chain_id = None;
        if let Some(pinned) = pinned {
            let served: keyquorum_contract::ContractConfig =
                client.get("/query/config").await.map_err(failed)?;
            let digest = crate::chain::replica::config_digest(&served);
            if digest != pinned {
                return Err(CliError::Failed(format!(
                    "the chain at {} runs another contract configuration (digest {}, \
                     chain_config_digest {}): {}",
                    config.chain_url,
                    hex::encode(digest),
                    hex::encode(pinned),
                    if body.is_some() {
                        "nothing was signed"
                    } else {
                        "its accounts are another chain's"
                    }
                )));
            }
            pinned_chain_id = Some(served.chain_id);
        }
        if let (Some(body), Some(keys)) = (body, &keys) {
            let status: keyquorum_devchain::api::Status<keyquorum_contract::query::ContractStatus> =
                client.status().await.map_err(failed)?;
            let served_chain_id = status
                .state
                .ok_or_else(|| CliError::Failed("the chain runs no contract".into()))?
                .chain_id;
            let chain_id = pinned_chain_id.unwrap_or(served_chain_id);
            let kind = body.kind();
            match send(&client, &chain_id, keys.identity(), body).await {
                Ok(applied) => {
                    println!("{kind} applied in block {}", applied.height);
                    if applied.attempts > 1 {
                        println!(
                            "  (signed {} times: another sender from this account, such as its \
                             running node, took the nonce)",
                            applied.attempts
                        );
                    }
                    for e in &applied.events {
                        println!("  {e}");
                    }
                }
                Err(AccountError::Chain(e)) => return Err(failed(e)),
                Err(e) => return Err(CliError::Failed(format!("{kind}: {e}"))),
            }
        }
        print_account(&account(&client, &who).await.map_err(failed)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evm_node_is_told_to_use_the_coordinators_own_calls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "chain = \"evm\"\n[evm]\nrpc = \"http://127.0.0.1:1\"\n\
             contract = \"0x0000000000000000000000000000000000000001\"\n\
             chain_key_file = \"chain.key\"\n",
        )
        .unwrap();
        let selection = NodeSelection {
            config: Some(path),
            chain_url: None,
            chain_config_digest: None,
            key_file: None,
            passphrase_file: None,
            passphrase_env: None,
        };
        let err = selection.load().unwrap_err();
        assert!(
            matches!(&err, CliError::Usage(m) if m.contains("(addStake, unbond, withdraw)")),
            "{err}"
        );
    }
}
