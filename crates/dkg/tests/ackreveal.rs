//! Ack-or-reveal ceremonies end to end on both curves, fresh and reshared.

mod common;

use common::*;
use ff::Field;
use group::Group;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::poly::lagrange_at_zero;
use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
use keyquorum_dkg::{Ceremony, Params};

fn check_agreement<C: Curve>(
    results: &[Result_<C>],
    honest: &[usize],
) -> Vec<Box<keyquorum_dkg::node::DkgOutput<C>>> {
    let outs: Vec<_> = honest
        .iter()
        .map(|i| match &results[*i] {
            Result_::Ok(o) => o.clone(),
            Result_::Failed(f) => panic!("node {i} failed: {f:?}"),
            Result_::Pending => panic!("node {i} did not finish"),
        })
        .collect();
    for o in &outs {
        assert_eq!(o.public, outs[0].public);
        let idx = o.player_index.unwrap() as usize;
        let x = o.secret_share.as_ref().unwrap();
        assert_eq!(
            (C::Point::generator() * x.expose()),
            o.public.public_shares[idx].to_curve()
        );
    }
    outs
}

fn fresh<C: Curve>(n: usize, t: usize, k: usize, silent: &[usize]) {
    let members: Vec<Member> = (0..n as u32).map(member).collect();
    let cfg = fresh_config::<C>(&members, Params::new(n, t, k).unwrap());
    let ceremony = Ceremony::new(cfg).unwrap();
    let results = run(ceremony.clone(), members, vec![None; n], silent);
    let honest: Vec<usize> = (0..n).filter(|i| !silent.contains(i)).collect();
    let outs = check_agreement(&results, &honest);
    // Group secret = interpolation of any t honest shares; its public key is the group key.
    let xs: Vec<C::Scalar> = honest[..t]
        .iter()
        .map(|i| ceremony.player_indices()[*i])
        .collect();
    let l = lagrange_at_zero(&xs).unwrap();
    let mut secret = C::Scalar::ZERO;
    for (o, li) in outs[..t].iter().zip(&l) {
        secret += *o.secret_share.as_ref().unwrap().expose() * li;
    }
    assert_eq!(
        C::Point::generator() * secret,
        outs[0].public.group_key.to_curve()
    );
    for s in silent {
        assert!(!outs[0].public.qualified.contains(&(*s as u32)));
    }
}

#[test]
fn fresh_bls_all_honest() {
    fresh::<Bls12381G1>(4, 3, 3, &[]);
    fresh::<Bls12381G1>(7, 5, 5, &[]);
}

#[test]
fn fresh_secp_all_honest() {
    fresh::<Secp256k1>(5, 3, 4, &[]);
}

#[test]
fn fresh_with_silent_node_retries_without_it() {
    // n = 7, t = k = 5: f = 2; one silent node means one missing ack per dealer (<= max reveals).
    fresh::<Bls12381G1>(7, 5, 5, &[3]);
    // n = 4, t = 2, k = 3: max reveals 0, so the silent node forces a second attempt.
    fresh::<Secp256k1>(4, 2, 3, &[0]);
}

#[test]
fn reshare_keeps_the_group_key() {
    let n = 5;
    let members: Vec<Member> = (0..n as u32).map(member).collect();
    let cfg = fresh_config::<Bls12381G1>(&members, Params::new(n, 3, 4).unwrap());
    let c1 = Ceremony::new(cfg).unwrap();
    let r1 = run(c1.clone(), members, vec![None; n], &[]);
    let outs = check_agreement(&r1, &(0..n).collect::<Vec<_>>());
    // New committee: members 1..5 stay, 0 leaves, 5 and 6 join.
    let old: Vec<Member> = (0..n as u32).map(member).collect();
    let new: Vec<Member> = (1..7u32).map(member).collect();
    let mut cfg2 = fresh_config::<Bls12381G1>(&new, Params::new(6, 4, 5).unwrap());
    cfg2.epoch = 2;
    cfg2.reshare = Some(reshare_of(&old, &c1, &outs[0]));
    let c2 = Ceremony::new(cfg2).unwrap();
    // Participants: union of old and new; node i of `all` is member i.
    let all: Vec<Member> = (0..7u32).map(member).collect();
    let old_shares: Vec<_> = (0..7)
        .map(|i| {
            if i < n {
                outs[i].secret_share.clone()
            } else {
                None
            }
        })
        .collect();
    let r2 = run(c2, all, old_shares, &[]);
    let outs2 = check_agreement(&r2, &(1..7).collect::<Vec<_>>());
    assert_eq!(outs2[0].public.group_key, outs[0].public.group_key);
}
