//! The library entry points: [`Chain`] (start, stop) and [`ChainHandle`] (submit, query,
//! subscribe), plus [`run`] and [`run_until_ctrl_c`] for daemons.

use std::net::SocketAddr;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, oneshot, watch};

use crate::block::Block;
use crate::config::ChainConfig;
use crate::engine::{ChainStatus, Command, Engine, Limits, TxStatus, panic_message};
use crate::error::{ChainError, SubmitError};
use crate::state_machine::{StateMachine, TxHash};
use crate::store::Store;

/// Capacity of the engine's command queue; beyond it requests get "busy".
const COMMAND_QUEUE: usize = 4096;
/// Blocks buffered per [`ChainHandle::subscribe`] receiver before it lags.
const BLOCK_BROADCAST: usize = 1024;
/// How long [`Chain::stop`] lets in-flight HTTP requests finish.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// A cheap, cloneable handle to a running chain, used by the HTTP API and by in-process users.
///
/// The handle keeps the database file open: drop every clone before reopening the same data
/// directory in the same process.
#[derive(Clone)]
pub struct ChainHandle {
    cmd: SyncSender<Command>,
    store: Store,
    height: watch::Receiver<u64>,
    blocks: broadcast::Sender<Arc<Block>>,
    shutdown: watch::Receiver<bool>,
    config: Arc<ChainConfig>,
}

impl ChainHandle {
    fn send(&self, cmd: Command) -> Result<(), SubmitError> {
        self.cmd.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => SubmitError::Busy,
            TrySendError::Disconnected(_) => SubmitError::Halted,
        })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ChainError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).map_err(|_| ChainError::Halted)?;
        rx.await.map_err(|_| ChainError::Halted)
    }

    /// Submits a raw transaction. `Ok` means it passed `check_tx`, is not a duplicate, and is
    /// durably stored: it will be in a block, even across a crash.
    pub async fn submit(&self, tx: Vec<u8>) -> Result<TxHash, SubmitError> {
        if tx.is_empty() {
            return Err(SubmitError::Empty);
        }
        if tx.len() > self.config.max_tx_bytes {
            return Err(SubmitError::TooLarge {
                size: tx.len(),
                max: self.config.max_tx_bytes,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Submit { tx, reply })?;
        rx.await.map_err(|_| SubmitError::Halted)?
    }

    /// Runs a state-machine query against the state after the last committed block.
    pub async fn query(&self, path: &str) -> Result<Option<Value>, ChainError> {
        let path = path.to_owned();
        self.ask(|reply| Command::Query { path, reply }).await
    }

    /// Height, last hash, mempool size and the state machine's `"status"`.
    pub async fn status(&self) -> Result<ChainStatus, ChainError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// Whether a transaction is pending, included (where) or unknown.
    pub async fn tx_status(&self, hash: TxHash) -> Result<TxStatus, ChainError> {
        self.ask(|reply| Command::TxStatus { hash, reply }).await?
    }

    /// Height of the last committed block.
    pub fn height(&self) -> u64 {
        *self.height.borrow()
    }

    /// Waits until a block at `height` or above is committed; `false` on timeout or shutdown.
    pub async fn wait_for_height(&self, height: u64, timeout: Duration) -> bool {
        let mut h = self.height.clone();
        let mut shutdown = self.shutdown.clone();
        let wait = async {
            tokio::select! {
                r = h.wait_for(|&x| x >= height) => r.is_ok(),
                _ = shutdown.wait_for(|&s| s) => false,
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// A committed block.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ChainError> {
        self.store
            .block_json(height)?
            .map(|j| decode_block(&j))
            .transpose()
    }

    /// Up to `max` consecutive committed blocks from `from`.
    pub fn blocks_from(&self, from: u64, max: usize) -> Result<Vec<Block>, ChainError> {
        self.store
            .blocks_json_from(from, max, usize::MAX)?
            .iter()
            .map(|j| decode_block(j))
            .collect()
    }

    /// JSON of consecutive blocks from `from`, bounded by the configured response limits.
    pub(crate) fn blocks_json_from(
        &self,
        from: u64,
        max_blocks: usize,
    ) -> Result<Vec<Vec<u8>>, ChainError> {
        self.store.blocks_json_from(
            from,
            max_blocks.min(self.config.max_events_blocks),
            self.config.max_events_bytes,
        )
    }

    /// Every block committed from now on, after it is durable. A receiver that falls more than
    /// 1024 blocks behind gets `Lagged` and can catch up with [`blocks_from`](Self::blocks_from).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Block>> {
        self.blocks.subscribe()
    }

    /// The configuration the chain runs with.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }
}

fn decode_block(json: &[u8]) -> Result<Block, ChainError> {
    serde_json::from_slice(json).map_err(|e| ChainError::Corrupt(format!("block JSON: {e}")))
}

/// A running chain: engine thread plus HTTP server. Dereferences to its [`ChainHandle`].
pub struct Chain {
    handle: ChainHandle,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    engine_done: Option<oneshot::Receiver<Result<(), ChainError>>>,
    engine_thread: Option<std::thread::JoinHandle<()>>,
}

impl Deref for Chain {
    type Target = ChainHandle;
    fn deref(&self) -> &ChainHandle {
        &self.handle
    }
}

impl Chain {
    /// Opens (or creates) the database in `config.data_dir`, rebuilds the state by replaying
    /// the stored blocks through `state_machine` (given in its initial state), re-queues the
    /// pending transactions, then starts block production and the HTTP API.
    ///
    /// Must be called inside a Tokio runtime.
    pub async fn start<S: StateMachine>(
        config: ChainConfig,
        state_machine: S,
    ) -> Result<Chain, ChainError> {
        config.validate()?;
        let config = Arc::new(config);
        crate::data_dir::create(&config.data_dir).map_err(|reason| ChainError::DataDir {
            path: config.data_dir.clone(),
            reason,
        })?;
        // Bound first, so that an address in use is reported at once rather than after the
        // replay; connections wait in the backlog until the API is served below.
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ChainError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr()?;

        let (height_tx, height_rx) = watch::channel(0u64);
        let (blocks_tx, _) = broadcast::channel(BLOCK_BROADCAST);
        let (store, engine) = {
            let config = config.clone();
            let blocks_tx = blocks_tx.clone();
            tokio::task::spawn_blocking(move || {
                let store = Store::open(&config.db_path())?;
                let genesis = state_machine.genesis_id();
                let recorded = store.recorded_genesis()?;
                if let (Some(id), Some(stored)) = (genesis, &recorded)
                    && stored.as_slice() != id.as_slice()
                {
                    return Err(ChainError::OtherGenesis {
                        path: config.db_path(),
                        stored: hex::encode(stored),
                        given: hex::encode(id),
                    });
                }
                let engine = Engine::recover(
                    state_machine,
                    store.clone(),
                    Limits::from_config(&config),
                    height_tx,
                    blocks_tx,
                )?;
                // Recorded once the stored blocks replayed on this genesis (none for a new
                // file), so a wrong start never records its genesis over the right one.
                if let (Some(id), None) = (genesis, recorded) {
                    store.record_genesis(id)?;
                }
                Ok::<_, ChainError>((store, engine))
            })
            .await
            .map_err(|e| ChainError::Corrupt(format!("recovery task failed: {e}")))??
        };
        tracing::info!(
            height = engine.height(),
            pending = engine.pending_len(),
            data_dir = %config.data_dir.display(),
            "chain state rebuilt"
        );

        let (cmd_tx, cmd_rx) = sync_channel(COMMAND_QUEUE);
        let (done_tx, done_rx) = oneshot::channel();
        let engine_thread = std::thread::Builder::new()
            .name("devchain-engine".into())
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| engine.run(cmd_rx)))
                    .unwrap_or_else(|p| Err(ChainError::Panic(panic_message(&*p))));
                if let Err(e) = &result {
                    tracing::error!("chain halted: {e}");
                }
                let _ = done_tx.send(result);
            })?;

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let handle = ChainHandle {
            cmd: cmd_tx,
            store,
            height: height_rx,
            blocks: blocks_tx,
            shutdown: shutdown_rx.clone(),
            config,
        };
        let app = crate::http::router(handle.clone());
        let mut stop_http = shutdown_rx;
        let server = tokio::spawn(async move {
            crate::serve::serve(listener, app, crate::serve::Limits::default(), async move {
                let _ = stop_http.wait_for(|&s| s).await;
            })
            .await;
        });
        tracing::info!(%local_addr, "chain API listening");
        Ok(Chain {
            handle,
            local_addr,
            shutdown: shutdown_tx,
            server: Some(server),
            engine_done: Some(done_rx),
            engine_thread: Some(engine_thread),
        })
    }

    /// The address the HTTP API is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for in-process use.
    pub fn handle(&self) -> ChainHandle {
        self.handle.clone()
    }

    /// Resolves when the engine stops by itself, i.e. when it halted on an error (a second call
    /// returns [`ChainError::Halted`] at once).
    pub async fn stopped(&mut self) -> Result<(), ChainError> {
        match self.engine_done.take() {
            Some(rx) => rx.await.unwrap_or(Err(ChainError::Halted)),
            None => Err(ChainError::Halted),
        }
    }

    /// Stops the HTTP API (letting requests in flight finish) and the engine, and closes the
    /// database once other [`ChainHandle`] clones are dropped. Pending transactions stay in the
    /// database and are re-queued by the next start. Returns the engine's error if it had
    /// halted.
    pub async fn stop(mut self) -> Result<(), ChainError> {
        self.shutdown.send_replace(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(HTTP_DRAIN, &mut server).await.is_err()
        {
            server.abort();
            let _ = server.await;
        }
        let cmd = self.handle.cmd.clone();
        let _ = tokio::task::spawn_blocking(move || cmd.send(Command::Stop)).await;
        let result = match self.engine_done.take() {
            Some(rx) => rx.await.unwrap_or(Err(ChainError::Halted)),
            None => Ok(()),
        };
        if let Some(t) = self.engine_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        result
    }

    /// Serves until Ctrl-C (SIGINT) or, on Unix, SIGTERM, then stops cleanly. Returns early
    /// with the error if the engine halts.
    pub async fn run_until_ctrl_c(mut self) -> Result<(), ChainError> {
        let halted = tokio::select! {
            r = self.stopped() => Some(r),
            r = shutdown_signal() => {
                r?;
                None
            }
        };
        match halted {
            Some(result) => {
                let _ = self.stop().await;
                result.and(Err(ChainError::Halted))
            }
            None => {
                tracing::info!("shutdown signal received, stopping chain");
                self.stop().await
            }
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        // Not stopped explicitly: ask everything to wind down without waiting.
        self.shutdown.send_replace(true);
        if self.engine_done.is_some() {
            let _ = self.handle.cmd.try_send(Command::Stop);
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Starts a chain and runs it until the engine halts (it does not stop on its own otherwise).
pub async fn run<S: StateMachine>(config: ChainConfig, state_machine: S) -> Result<(), ChainError> {
    let mut chain = Chain::start(config, state_machine).await?;
    let result = chain.stopped().await;
    let _ = chain.stop().await;
    result.and(Err(ChainError::Halted))
}

/// Starts a chain and runs it until Ctrl-C or SIGTERM, then stops it cleanly; what
/// `keyquorum chain` calls.
pub async fn run_until_ctrl_c<S: StateMachine>(
    config: ChainConfig,
    state_machine: S,
) -> Result<(), ChainError> {
    Chain::start(config, state_machine)
        .await?
        .run_until_ctrl_c()
        .await
}
