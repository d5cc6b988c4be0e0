//! Fault injection for tests and demos (`--fault`): an equivocating second contribution, a
//! publication with a forged ack aggregate, and wrong shares to chosen players (in either variant; equivocation in the ack-or-reveal variant only),
//! and the three dealer faults of seed 003 in a view's signing-key ceremony (inconsistent
//! commitments, a deal withheld from one member, no Feldman values). Never active unless
//! configured.

use keyquorum_contract::signing_key::SigningCurve;
use keyquorum_dkg::complaint::messages::ComplaintPost;

use super::*;

pub(super) struct FaultState {
    pub(super) contribution_hash: Option<[u8; 32]>,
    pub(super) bad_targets: BTreeSet<u32>,
    pub(super) rng: ChaCha20Rng,
}

impl Driver {
    /// The `forge-ack-aggregate` fault: our publication with a forged ack aggregate (the
    /// honest aggregate plus our signature on another message: a valid point that does not
    /// verify), signed by us. Deterministic, so a replay recognises it on the board.
    pub(super) fn forge_publication(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.fault != Fault::ForgeAckAggregate {
            return bytes;
        }
        let Some(live) = self.live.as_ref() else {
            return bytes;
        };
        let Ok(signed) = SignedPost::<G>::decode(&bytes, live.ceremony.n()) else {
            return bytes;
        };
        let Post::Publication(mut publication) = signed.post else {
            return bytes;
        };
        let Some(honest) = publication.ack_signature else {
            return bytes;
        };
        let other = self.keys.identity().sign(
            Purpose::Post,
            b"keyquorum/node/fault-forge-ack-aggregate/v1",
        );
        let Some(forged) = keyquorum_dkg::identity::aggregate(&[honest, other]) else {
            return bytes;
        };
        publication.ack_signature = Some(forged);
        let post = Post::Publication(publication);
        let signature = self
            .keys
            .identity()
            .sign(Purpose::Post, &post.signed_payload());
        SignedPost { post, signature }.encode()
    }

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

impl Driver {
    /// The member a signing-key fault aims at: the next one after this node in committee order
    /// (for a reshare's dealer outside the new committee, the one after its dealer position).
    fn signing_fault_target(&self) -> Option<u32> {
        let live = self.signing.as_ref()?;
        let c = &live.ceremony;
        let n = c.n() as u32;
        match c.player_position(&self.me) {
            Some(me) => (n > 1).then_some((me + 1) % n),
            None => c.dealer_position(&self.me).map(|d| (d + 1) % n),
        }
    }

    /// Fault hook on a deal of the signing-key ceremony: `None` to withhold it
    /// (`signing-key-withhold`), or the deal to send in its place (`signing-key-equivocate`: a
    /// second commitment, signed, with a pair that opens it).
    pub(super) fn signing_fault_on_deal(&self, payload: Vec<u8>) -> Option<Vec<u8>> {
        if !matches!(
            self.fault,
            Fault::SigningKeyEquivocate | Fault::SigningKeyWithhold
        ) {
            return Some(payload);
        }
        let (Some(live), Some(target)) = (self.signing.as_ref(), self.signing_fault_target())
        else {
            return Some(payload);
        };
        let c = &live.ceremony;
        let Ok(deal) = ComplaintDeal::<SigningCurve>::decode(&payload, c.n()) else {
            return Some(payload);
        };
        if deal.player != target {
            return Some(payload);
        }
        if self.fault == Fault::SigningKeyWithhold {
            debug!(player = target, "fault injection: withholding the deal");
            return None;
        }
        let Some(key) = c.verifiable_key(target) else {
            return Some(payload);
        };
        // Deterministic, so that a deal sent again after a restart repeats the same second
        // commitment.
        let mut rng = ChaCha20Rng::from_seed(live.fault_seed);
        let f = Polynomial::random(c.t() - 1, None, &mut rng);
        let blind = Polynomial::random(c.t() - 1, None, &mut rng);
        let signed = SignedPedersen::new(
            self.keys.identity(),
            c.id(),
            deal.dealer,
            EvalCommitment::<SigningCurve>::pedersen(&f, &blind, c.player_indices()),
        );
        let x = &c.player_indices()[target as usize];
        let share = Secret::new(f.evaluate(x));
        let blind = Secret::new(blind.evaluate(x));
        debug!(
            player = target,
            "fault injection: a deal under a second signed commitment"
        );
        Some(
            seal_deal(
                self.keys.identity(),
                c.id(),
                &signed,
                (target, key),
                share.expose(),
                blind.expose(),
                &mut rng,
            )
            .encode(),
        )
    }

    /// Fault hook on a post of the signing-key ceremony: `None` to withhold it. With
    /// `signing-key-skip-feldman` the Feldman commitment is never posted; with
    /// `signing-key-withhold` the justification leaves out the target member's pair (and is
    /// not posted if that was the only one).
    pub(super) fn signing_fault_on_post(&self, post: Vec<u8>) -> Option<Vec<u8>> {
        if !matches!(
            self.fault,
            Fault::SigningKeySkipFeldman | Fault::SigningKeyWithhold
        ) {
            return Some(post);
        }
        let Some(live) = self.signing.as_ref() else {
            return Some(post);
        };
        let c = &live.ceremony;
        let Ok(signed) =
            SignedComplaintPost::<SigningCurve>::decode(&post, c.n(), c.dealer_count())
        else {
            return Some(post);
        };
        match signed.post {
            ComplaintPost::Feldman(_) if self.fault == Fault::SigningKeySkipFeldman => {
                debug!("fault injection: withholding the Feldman commitment");
                None
            }
            ComplaintPost::Justification(mut j) if self.fault == Fault::SigningKeyWithhold => {
                let target = self.signing_fault_target();
                let before = j.deals.len();
                j.deals.retain(|(p, _)| Some(*p) != target);
                if j.deals.len() == before {
                    return Some(post);
                }
                debug!(
                    player = ?target,
                    "fault injection: withholding the pair asked for on the board"
                );
                (!j.deals.is_empty()).then(|| {
                    SignedComplaintPost::sign(self.keys.identity(), ComplaintPost::Justification(j))
                        .encode()
                })
            }
            _ => Some(post),
        }
    }
}
