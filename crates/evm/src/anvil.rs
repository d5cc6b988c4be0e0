//! A local EVM chain for tests and the demo: anvil (Foundry's development node) on loopback,
//! with the Prague hardfork, whose EIP-2537 precompiles the coordinator needs.
//!
//! anvil comes from the npm package `@foundry-rs/anvil`, a pinned dev dependency of
//! `contracts/` (`cd contracts && npm ci` installs it; the binary ships in a per-platform
//! package). [`Anvil::start`] uses `KEYQUORUM_ANVIL` if set, else the npm-installed binary, else
//! fetches the same pinned package from the npm registry itself ([`crate::anvil_fetch`]), so a
//! machine with only the Rust toolchain runs the tests too; a binary run away from its source
//! tree, which has no lockfile to fetch by, takes an `anvil` on `PATH` instead. When none of these works it fails
//! saying why: nothing that needs anvil is skipped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};

/// Environment variable naming an anvil binary to use instead of the npm-installed one.
pub const ANVIL_ENV: &str = "KEYQUORUM_ANVIL";

/// How to get anvil, for the error when it is missing.
pub const INSTALL_HINT: &str = "anvil is not installed and could not be fetched: run `npm ci` in \
     contracts/ (it installs the pinned @foundry-rs/anvil), or set KEYQUORUM_ANVIL to an anvil binary";

/// The anvil binary: `KEYQUORUM_ANVIL`, else the one `npm ci` put under
/// `contracts/node_modules/@foundry-rs/anvil-<platform>/bin/` of the repository at `repo`, else
/// the same pinned package fetched from the npm registry and checked against the lockfile, or,
/// without the repository's lockfile, an `anvil` on `PATH`.
pub fn find_anvil(repo: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ANVIL_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{ANVIL_ENV}={} is not a file", p.display()))
        };
    }
    let scope = repo.join("contracts/node_modules/@foundry-rs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&scope)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
        .map(|e| e.path().join("bin/anvil"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    if let Some(p) = found.pop() {
        return Ok(p);
    }
    // A binary run away from its source tree (a release build copied elsewhere) has no
    // lockfile to fetch the pinned package by: an anvil the user installed (Foundry's
    // `foundryup`) is taken instead. In the tree the pinned one stays first, cached or fetched.
    if !repo.join("contracts/package-lock.json").is_file()
        && let Some(p) = on_path("anvil")
    {
        return Ok(p);
    }
    crate::anvil_fetch::fetch_pinned(repo).map_err(|e| {
        format!(
            "{INSTALL_HINT}, or put anvil on PATH (looked in {} and on PATH; {e})",
            scope.display()
        )
    })
}

/// The first file named `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    first_in(&std::env::var_os("PATH")?, name)
}

/// The first file named `name` in a directory of the `PATH`-style list `dirs`.
fn first_in(dirs: &std::ffi::OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(dirs)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A running anvil, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
}

impl Anvil {
    /// Starts anvil from the repository at `repo` on a free loopback port with chain id 31337,
    /// mining a block per transaction, or every `block_time` seconds if given; waits until it
    /// answers.
    pub fn start(repo: &Path, block_time: Option<u64>) -> Result<Self, String> {
        Self::start_with_block_ms(repo, block_time.map(|s| s.saturating_mul(1000)))
    }

    /// [`Anvil::start`] with the block time in milliseconds (anvil takes fractions of a
    /// second); block timestamps stay whole seconds, so several blocks may share one.
    pub fn start_with_block_ms(repo: &Path, block_ms: Option<u64>) -> Result<Self, String> {
        Self::start_binary(&find_anvil(repo)?, block_ms)
    }

    /// [`Anvil::start_with_block_ms`] with the anvil found at `binary`: the binary itself or a
    /// wrapper that runs it (npm's `node_modules/.bin/anvil`). On drop the process and every
    /// process under it are stopped, so a wrapper's anvil stops with it. It stays in the
    /// caller's process group, so a Ctrl-C at the terminal reaches it too. It is also stopped
    /// when the calling thread ends, even by SIGKILL
    /// ([`crate::process::stop_with_spawning_thread`]): a killed demo or test leaves no anvil
    /// behind (through a wrapper, only the wrapper gets that signal; an anvil under it stops
    /// only if the wrapper passes it on).
    pub fn start_binary(binary: &Path, block_ms: Option<u64>) -> Result<Self, String> {
        Self::start_binary_on_hardfork(binary, block_ms, "prague")
    }

    /// [`Anvil::start_binary`] on another hardfork than Prague (an older one lacks the BLS
    /// precompiles the coordinator needs: for tests of that refusal).
    pub fn start_binary_on_hardfork(
        binary: &Path,
        block_ms: Option<u64>,
        hardfork: &str,
    ) -> Result<Self, String> {
        // Port 0: anvil binds a port the kernel gives it and says which. (A port picked here
        // and handed to anvil could be given to another process meanwhile, and anvil would
        // exit while that one answers.)
        let mut cmd = Command::new(binary);
        cmd.args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--hardfork", hardfork, "--chain-id", "31337"])
            // The coordinator is 24 KB and its ceremonies' calls are large.
            .args(["--gas-limit", "60000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(ms) = block_ms {
            let seconds = format!("{}.{:03}", ms / 1000, ms % 1000);
            cmd.args(["--block-time", &seconds]);
        }
        crate::process::stop_with_spawning_thread(&mut cmd);

        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (listening_tx, listening) = std::sync::mpsc::channel();
        // Reads anvil's output for the address it listens on, then keeps reading (its log of
        // every call) so that anvil never blocks on a full pipe; ends when anvil does.
        std::thread::spawn(move || {
            let mut listening_tx = Some(listening_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.trim().strip_prefix("Listening on ")
                    && let Some(tx) = listening_tx.take()
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let mut anvil = Anvil {
            child,
            url: String::new(),
        };
        match listening.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => {
                anvil.url = format!("http://{addr}");
                Ok(anvil)
            }
            Err(_) => Err(match anvil.child.try_wait() {
                Ok(Some(status)) => format!("{} exited at start: {status}", binary.display()),
                _ => format!("{} did not listen within 20 s", binary.display()),
            }),
        }
    }

    /// Its JSON-RPC endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A provider without a wallet, for anvil's own methods.
    pub async fn provider(&self) -> Result<DynProvider, String> {
        Ok(ProviderBuilder::new()
            .connect(&self.url)
            .await
            .map_err(|e| e.to_string())?
            .erased())
    }

    /// Calls the JSON-RPC method `name` with `params`: anvil's own controls
    /// (`anvil_dropTransaction`, `anvil_setStorageAt`, `evm_snapshot`, ...) and any other.
    pub async fn request<P, R>(&self, name: &'static str, params: P) -> Result<R, String>
    where
        P: alloy_json_rpc::RpcSend,
        R: alloy_json_rpc::RpcRecv,
    {
        self.provider()
            .await?
            .raw_request(name.into(), params)
            .await
            .map_err(|e| format!("{name}: {e}"))
    }

    /// Sets `who`'s balance to `wei` (`anvil_setBalance`).
    pub async fn fund(&self, who: Address, wei: U256) -> Result<(), String> {
        self.request::<_, serde_json::Value>("anvil_setBalance", (who, wei))
            .await
            .map(drop)
    }

    /// Mines `blocks` empty blocks (`anvil_mine`).
    pub async fn mine(&self, blocks: u64) -> Result<(), String> {
        self.request::<_, serde_json::Value>("anvil_mine", (U256::from(blocks),))
            .await
            .map(drop)
    }

    /// Whether each transaction is mined as it arrives (anvil's default) or only blocks asked
    /// for with [`Anvil::mine`] are (`evm_setAutomine`).
    pub async fn set_automine(&self, on: bool) -> Result<(), String> {
        self.request::<_, serde_json::Value>("evm_setAutomine", (on,))
            .await
            .map(drop)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        // A wrapper's anvil is the wrapper's child: killing the wrapper alone leaves it
        // running. The processes under ours are stopped first, while ours is alive and not
        // reaped, so their pids cannot have been reused by then.
        #[cfg(target_os = "linux")]
        for pid in descendants(self.child.id()) {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: `kill` has no memory effects; a process already gone is an error
                // ignored.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process under `pid` (its children, theirs, ...), deepest first, as
/// `/proc/<pid>/task/<tid>/children` lists them.
#[cfg(target_os = "linux")]
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    for task in tasks {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            found.extend(descendants(child));
            found.push(child);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `PATH` lookup takes the first directory that holds a file of that name, skipping
    /// directories without one and a directory of that name.
    #[test]
    fn the_path_lookup_takes_the_first_directory_holding_the_binary() {
        let root = tempfile::tempdir().unwrap();
        let [empty, shadow, first, second] =
            ["empty", "shadow", "first", "second"].map(|d| root.path().join(d));
        for d in [&empty, &shadow, &first, &second] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir(shadow.join("anvil")).unwrap();
        std::fs::write(first.join("anvil"), b"").unwrap();
        std::fs::write(second.join("anvil"), b"").unwrap();
        let dirs = std::env::join_paths([&empty, &shadow, &first, &second]).unwrap();
        assert_eq!(first_in(&dirs, "anvil"), Some(first.join("anvil")));
        let none = std::env::join_paths([&empty, &shadow]).unwrap();
        assert_eq!(first_in(&none, "anvil"), None);
    }
}
