//! `GET /sections`: the section as this node holds it, in JSON, with everything a client needs
//! to check it from the genesis key alone: the key chain (each key with its parent's signature
//! over the key's 48 bytes) and the last applied SAP with both its signatures. The same JSON is
//! written to `key_chain.json` in the data directory when the node starts and whenever the
//! section changes.

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keyquorum_sections::KeyChain;
use keyquorum_sections::keys::{key_bytes, signature_bytes};
use keyquorum_sections::sap::SignedSap;
use keyquorum_sections::store::ElderRecord;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::status::ListenError;

/// An elder as listed in the SAP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElderView {
    /// Its name (hex).
    pub name: String,
    /// Its node key (48-byte G1, hex).
    pub node_key: String,
    /// Its address.
    pub addr: String,
}

/// The last applied SAP with its two signatures (all hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedSapView {
    /// The SAP's canonical encoding (`Sap::encode`); its signing bytes are what
    /// `sap_signature` signs.
    pub sap: String,
    /// The section key's signature on the SAP.
    pub sap_signature: String,
    /// The parent key.
    pub parent_key: String,
    /// The parent key's signature on the section key.
    pub parent_signature: String,
}

/// The section as one node holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionView {
    /// This node's name (hex).
    pub name: String,
    /// Whether this node holds a share of the section key.
    pub elder: bool,
    /// Whether the current SAP lists this node among its elders. True with `elder` false: the
    /// node missed the DKG of this key (it was down, or took the SAP by catching up), holds no
    /// share of it and signs nothing with it; a later handover gives it one.
    #[serde(default)]
    pub listed_as_elder: bool,
    /// The genesis key (hex).
    pub genesis_key: String,
    /// The section's prefix: its bit count and its encoding (hex).
    pub prefix_bits: u16,
    /// `Prefix::encode`, hex.
    pub prefix: String,
    /// The section key (hex): the last key of the chain.
    pub section_key: String,
    /// Keys in the chain, the genesis key included.
    pub generation: u64,
    /// The elders of the current SAP, sorted by name.
    pub elders: Vec<ElderView>,
    /// The key chain after the genesis key.
    pub key_chain: KeyChain,
    /// The current SAP with its signatures (the genesis SAP is signed by the genesis key, as
    /// its own parent); `None` only if the node holds no signature for its current SAP.
    pub signed_sap: Option<SignedSapView>,
    /// Members this node knows of under the section's prefix (elders included).
    pub members: usize,
    /// Their names (hex), ascending: elders whose counts differ can be compared name by name.
    pub member_names: Vec<String>,
}

impl SectionView {
    /// The view of a node named `name` holding `record`.
    pub fn new(
        name: &keyquorum_sections::Name,
        elder: bool,
        record: &ElderRecord,
        signed: Option<&SignedSap>,
        member_names: Vec<String>,
    ) -> Self {
        let mut prefix = Vec::new();
        record.sap.prefix.encode(&mut prefix);
        SectionView {
            name: hex::encode(name.0),
            elder,
            listed_as_elder: record.sap.names().contains(name),
            genesis_key: hex::encode(key_bytes(&record.genesis_key)),
            prefix_bits: record.sap.prefix.bit_count(),
            prefix: hex::encode(prefix),
            section_key: hex::encode(key_bytes(&record.sap.section_key)),
            generation: record.chain.key_count(),
            elders: record
                .sap
                .elders
                .iter()
                .map(|p| ElderView {
                    name: hex::encode(p.name().0),
                    node_key: hex::encode(key_bytes(&p.node_key)),
                    addr: p.addr.clone(),
                })
                .collect(),
            key_chain: record.chain.clone(),
            signed_sap: signed
                .filter(|s| s.sap == record.sap)
                .map(|s| SignedSapView {
                    sap: hex::encode(s.sap.encode()),
                    sap_signature: hex::encode(signature_bytes(&s.sap_signature)),
                    parent_key: hex::encode(key_bytes(&s.parent_key)),
                    parent_signature: hex::encode(signature_bytes(&s.parent_signature)),
                }),
            members: member_names.len(),
            member_names,
        }
    }
}

async fn section(State(view): State<watch::Receiver<SectionView>>) -> Json<SectionView> {
    Json(view.borrow().clone())
}

/// Serves `GET /sections` at `addr` from `view`.
pub async fn serve(
    addr: SocketAddr,
    view: watch::Receiver<SectionView>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ListenError> {
    let listen_error = |source| ListenError {
        serves: "/sections",
        addr,
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let app = Router::new()
        .route("/sections", get(section))
        .with_state(view);
    let task = tokio::spawn(keyquorum_devchain::serve::serve(
        listener,
        app,
        keyquorum_devchain::serve::Limits::default(),
        std::future::pending(),
    ));
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use keyquorum_sections::elders::Peer;
    use keyquorum_sections::sap;
    use keyquorum_sections::simulation::secret;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    /// A SAP elder without a share, as after catching up, is listed without being shown as
    /// holding a share; a member the SAP does not list is neither.
    #[test]
    fn a_listed_elder_without_a_share_is_shown_as_such() {
        let founder = Peer::new(&secret(1), "founder:1".into());
        let (sap, _) = sap::genesis(founder.clone(), &mut ChaCha20Rng::seed_from_u64(1));
        let record = ElderRecord {
            genesis_key: sap.section_key,
            chain: KeyChain::genesis(),
            sap,
            superseded: Vec::new(),
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let listed = SectionView::new(&founder.name(), false, &record, None, Vec::new());
        assert!(listed.listed_as_elder && !listed.elder);
        let member = Peer::new(&secret(2), "member:1".into()).name();
        let other = SectionView::new(&member, false, &record, None, Vec::new());
        assert!(!other.listed_as_elder && !other.elder);
    }
}
