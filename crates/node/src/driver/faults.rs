//! Fault injection for tests and demos (`--fault`): an equivocating second contribution and wrong
//! shares to chosen players (in either variant; equivocation in the ack-or-reveal variant only).
//! Never active unless configured.

use super::*;

pub(super) struct FaultState {
    pub(super) contribution_hash: Option<[u8; 32]>,
    pub(super) bad_targets: BTreeSet<u32>,
    pub(super) rng: ChaCha20Rng,
}

impl Driver {
    /// Fault hooks on our own posts: remembers the contribution's hash (for bad shares) and,
    /// for `equivocate`, returns a second, different contribution signed by us.
    pub(super) fn note_post(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let live = self.live.as_mut()?;
        let signed = SignedPost::<G>::decode(bytes, live.ceremony.n()).ok()?;
        let Post::Contribution(c) = signed.post else {
            return None;
        };
        live.fault.contribution_hash = Some(c.commitment_hash());
        if self.fault != Fault::Equivocate {
            return None;
        }
        let mut rng = ChaCha20Rng::from_seed(tagged_hash(
            "keyquorum/node/fault-equivocate/v1",
            &[live.seed.as_slice()],
        ));
        let poly = Polynomial::random(live.ceremony.t() - 1, None, &mut rng);
        let post = Post::Contribution(Contribution::<G> {
            session: c.session,
            dealer: c.dealer,
            commitment: EvalCommitment::feldman(&poly, live.ceremony.player_indices()),
        });
        let signature = self
            .keys
            .identity()
            .sign(Purpose::Post, &post.signed_payload());
        Some(SignedPost { post, signature }.encode())
    }

    /// The `bad-share` fault: replaces the share encrypted to a target player by a random one,
    /// encrypted correctly (so the player can open it and see that it is wrong).
    pub(super) fn corrupt_deal(&mut self, payload: Vec<u8>) -> Vec<u8> {
        let Some(live) = self.live.as_mut() else {
            return payload;
        };
        if live.fault.bad_targets.is_empty() {
            return payload;
        }
        if live.ceremony.config().variant == Variant::Complaint {
            return self.corrupt_complaint_deal(payload);
        }
        let (Ok(Direct::Deal(d)), Some(hash)) =
            (Direct::decode(&payload), live.fault.contribution_hash)
        else {
            return payload;
        };
        if !live.fault.bad_targets.contains(&d.player) {
            return payload;
        }
        let Some(player) = live.ceremony.players().get(d.player as usize) else {
            return payload;
        };
        let aad = ShareAad {
            session_id: d.session,
            dealer: d.dealer,
            recipient: d.player,
            commitment_hash: hash,
        };
        let wrong = Scalar::random(&mut live.fault.rng);
        let ct = encrypt::seal(
            &player.encryption,
            &aad,
            &G::encode_scalar(&wrong),
            &mut live.fault.rng,
        );
        debug!(player = d.player, "fault injection: sending a wrong share");
        Direct::Deal(Deal {
            ciphertext: ct.to_bytes(),
            ..d
        })
        .encode()
    }

    /// The `bad-share` fault in the complaint variant: the deal to a target player carries a
    /// random pair, encrypted correctly and signed by this dealer, so that the player's
    /// complaint proves the fault from the dealer's own signed data.
    fn corrupt_complaint_deal(&mut self, payload: Vec<u8>) -> Vec<u8> {
        let Some(live) = self.live.as_mut() else {
            return payload;
        };
        let Ok(d) = ComplaintDeal::<G>::decode(&payload, live.ceremony.n()) else {
            return payload;
        };
        if !live.fault.bad_targets.contains(&d.player) {
            return payload;
        }
        let Some(key) = live.ceremony.verifiable_key(d.player) else {
            return payload;
        };
        let signed = SignedPedersen {
            dealer: d.dealer,
            hash: pedersen_hash(&d.session, d.dealer, &d.commitment),
            commitment: d.commitment,
            signature: d.commitment_signature,
        };
        let share = Scalar::random(&mut live.fault.rng);
        let blind = Scalar::random(&mut live.fault.rng);
        debug!(player = d.player, "fault injection: sending a wrong pair");
        seal_deal(
            self.keys.identity(),
            &d.session,
            &signed,
            (d.player, key),
            &share,
            &blind,
            &mut live.fault.rng,
        )
        .encode()
    }
}
