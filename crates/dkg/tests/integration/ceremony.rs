//! The ceremony's derived values that both variants' boards rely on.

use ff::Field;
use group::Curve as _;
use group::Group;
use keyquorum_crypto::Curve;
use keyquorum_crypto::bls12381::Bls12381G1;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_dkg::testing::ceremony::{MemberKeys, fresh_config, member, participant};
use keyquorum_dkg::{Ceremony, Params, Reshare};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

type C = Bls12381G1;
type S = <C as Curve>::Scalar;

/// Fresh key: every qualified dealer's polynomial is a summand, with weight one.
#[test]
fn fresh_key_weights_are_ones() {
    let members: Vec<MemberKeys> = (0..5).map(member).collect();
    let ceremony =
        Ceremony::<C>::new(fresh_config(&members, Params::new(5, 3, 4).unwrap())).unwrap();
    assert_eq!(ceremony.dealer_weights(&[0, 2, 4]), vec![S::ONE; 3]);
    assert!(ceremony.dealer_weights(&[]).is_empty());
}

/// Resharing: for every set of at least `t_old` qualified old dealers, the weights recombine
/// the old shares `s(x_i)` into the old secret `s(0)`, whatever the order of the set.
#[test]
fn reshare_weights_recombine_the_old_secret() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let old: Vec<MemberKeys> = (0..5).map(member).collect();
    let new: Vec<MemberKeys> = (3..9).map(member).collect();
    let old_threshold = 3;
    let secret = Polynomial::<S>::random(old_threshold - 1, None, &mut rng);
    let xs: Vec<S> = (1..=5u64).map(|i| S::from(i * 7 + 1)).collect();
    let g = <C as Curve>::Point::generator();
    let mut config = fresh_config::<C>(&new, Params::new(6, 4, 5).unwrap());
    config.reshare = Some(Reshare {
        dealers: old.iter().map(participant).collect(),
        dealer_indices: xs.clone(),
        old_threshold,
        group_key: (g * secret.constant()).to_affine(),
        public_shares: xs
            .iter()
            .map(|x| (g * secret.evaluate(x)).to_affine())
            .collect(),
    });
    let ceremony = Ceremony::<C>::new(config).unwrap();
    for dealers in [
        vec![0u32, 1, 2],
        vec![4, 2, 0],
        vec![1, 3, 4],
        vec![0, 1, 2, 3, 4],
    ] {
        let w = ceremony.dealer_weights(&dealers);
        assert_eq!(w.len(), dealers.len());
        let recombined: S = dealers
            .iter()
            .zip(&w)
            .map(|(d, w)| secret.evaluate(&xs[*d as usize]) * w)
            .sum();
        assert_eq!(recombined, secret.constant(), "dealers {dealers:?}");
    }
    // Fewer than `t_old` shares do not determine the secret: the weights of two dealers
    // recombine to something else (for this random polynomial).
    let w = ceremony.dealer_weights(&[0, 1]);
    let two: S = [0usize, 1]
        .iter()
        .zip(&w)
        .map(|(d, w)| secret.evaluate(&xs[*d]) * w)
        .sum();
    assert_ne!(two, secret.constant());
}
