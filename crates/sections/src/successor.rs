//! The one successor the elders of a section key authorise (seed 002, "Post successful DKG":
//! the current elders sign the new key with the current one).
//!
//! A section key's elders sign a link to a new key for each handover they complete. Within one
//! generation they may sign starts for more than one successor while the members change: an
//! elder change of the section and, once the members call for it, a split into two halves (or a
//! later elder change with other candidates). If the DKGs of two of them complete and each
//! gathers `supermajority(m)` link partials of the `m` elders, the key tree forks: two children
//! for one section, or a child for the section beside a half of it. Two such sets of signers
//! share an honest elder, so the fork is excluded if every honest elder links one successor
//! per key: exactly one child for the section's own prefix (an elder change), or at most one
//! child per half (a split), never both. The choice is part of the elder's durable record
//! ([`crate::store::ElderRecord::linked`]), so a restart cannot sign a second successor either.
//!
//! Once a half of a key is handed over, the split is made: the key's only other successor is
//! the other half ([`open_halves`]). Its members may meanwhile have become too few to split,
//! so that they call for an elder change of the parent; no elder that linked the first half can
//! link that, so the elders sign the other half's start instead, whatever its number of
//! members ([`crate::elders::StartSigner::starts_to_sign`]), and the key tree stays a tree.

use crate::keys::PublicKey;
use crate::name::Prefix;

/// A link an elder signed: `key` as the successor of `parent_key` for section `prefix` (the
/// parent's own prefix, or one of its halves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    /// The section key the link is signed with.
    pub parent_key: PublicKey,
    /// The prefix of the new SAP.
    pub prefix: Prefix,
    /// The new section key.
    pub key: PublicKey,
}

/// Whether an elder that already signed the links in `signed` may sign `next`, a successor of a
/// section whose prefix is `parent_prefix`: yes if it signed `next` already, or if `next` takes
/// a place still free (nothing signed for its parent key, or `next` is a half and only the
/// other half was signed).
pub fn may_link(signed: &[Successor], parent_prefix: &Prefix, next: &Successor) -> bool {
    signed
        .iter()
        .filter(|s| s.parent_key == next.parent_key)
        .all(|s| {
            if s.prefix == next.prefix {
                s.key == next.key
            } else {
                // An elder change excludes every other successor; two halves do not exclude each
                // other.
                s.prefix != *parent_prefix && next.prefix != *parent_prefix
            }
        })
}

/// Whether the links in `signed` leave no place for a new successor of `parent_key` for
/// `prefix` (a section whose own prefix is `parent_prefix`): one for `prefix` is signed
/// already, or an elder change of the key beside a half (either way round). An elder never
/// hands over to such a start again.
pub fn place_taken(
    signed: &[Successor],
    parent_key: &PublicKey,
    parent_prefix: &Prefix,
    prefix: &Prefix,
) -> bool {
    signed
        .iter()
        .filter(|s| s.parent_key == *parent_key)
        .any(|s| s.prefix == *prefix || s.prefix == *parent_prefix || prefix == parent_prefix)
}

/// The halves of `parent_prefix` still to hand over once a split of `parent_key` is made:
/// `None` unless `known` (links we signed, and a half we applied) holds a half of that key;
/// then the halves with no successor in `known`, empty if both have one or if `known` also
/// holds an elder change of the key (which no honest elder beside a half links).
pub fn open_halves(
    known: &[Successor],
    parent_key: &PublicKey,
    parent_prefix: &Prefix,
) -> Option<Vec<Prefix>> {
    let of_key: Vec<&Successor> = known
        .iter()
        .filter(|s| s.parent_key == *parent_key)
        .collect();
    if !of_key.iter().any(|s| s.prefix != *parent_prefix) {
        return None;
    }
    if of_key.iter().any(|s| s.prefix == *parent_prefix) {
        return Some(Vec::new());
    }
    Some(
        [0, 1]
            .into_iter()
            .filter_map(|bit| parent_prefix.child(bit))
            .filter(|half| !of_key.iter().any(|s| s.prefix == *half))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::key;

    /// The link from test key `parent` to test key `child` for `prefix`.
    fn link(parent: u64, prefix: Prefix, child: u64) -> Successor {
        Successor {
            parent_key: key(parent).1,
            prefix,
            key: key(child).1,
        }
    }

    #[test]
    fn one_child_or_one_per_half_per_key() {
        let root = Prefix::ROOT;
        let (zero, one) = (root.child(0).unwrap(), root.child(1).unwrap());
        // Nothing signed: anything goes; the same link again too.
        assert!(may_link(&[], &root, &link(0, root, 1)));
        let change = [link(0, root, 1)];
        assert!(may_link(&change, &root, &link(0, root, 1)));
        // After an elder change: no other child, no half.
        assert!(!may_link(&change, &root, &link(0, root, 2)));
        assert!(!may_link(&change, &root, &link(0, zero, 2)));
        // Another parent key is another choice.
        assert!(may_link(&change, &root, &link(1, zero, 2)));
        // After a half: the other half, but no elder change and no second key for that half.
        let half = [link(0, zero, 2)];
        assert!(may_link(&half, &root, &link(0, one, 3)));
        assert!(!may_link(&half, &root, &link(0, root, 3)));
        assert!(!may_link(&half, &root, &link(0, zero, 3)));
        let split = [link(0, zero, 2), link(0, one, 3)];
        assert!(may_link(&split, &root, &link(0, one, 3)));
        assert!(!may_link(&split, &root, &link(0, one, 4)));
    }

    #[test]
    fn a_place_is_taken_by_a_link_for_it_or_beside_it() {
        let root = Prefix::ROOT;
        let (zero, one) = (root.child(0).unwrap(), root.child(1).unwrap());
        let parent = key(0).1;
        for prefix in [root, zero, one] {
            assert!(!place_taken(&[], &parent, &root, &prefix));
            // Links of another key take nothing here.
            assert!(!place_taken(&[link(1, zero, 2)], &parent, &root, &prefix));
        }
        // After a half: that half and an elder change are taken, the other half is not.
        let half = [link(0, zero, 2)];
        assert!(place_taken(&half, &parent, &root, &zero));
        assert!(place_taken(&half, &parent, &root, &root));
        assert!(!place_taken(&half, &parent, &root, &one));
        // After an elder change: everything.
        let change = [link(0, root, 1)];
        for prefix in [root, zero, one] {
            assert!(place_taken(&change, &parent, &root, &prefix));
        }
    }

    #[test]
    fn a_split_is_made_once_a_half_is_linked() {
        let root = Prefix::ROOT;
        let (zero, one) = (root.child(0).unwrap(), root.child(1).unwrap());
        let parent = key(0).1;
        // No half of this key: nothing is open (the members decide).
        assert_eq!(open_halves(&[], &parent, &root), None);
        assert_eq!(open_halves(&[link(0, root, 1)], &parent, &root), None);
        assert_eq!(open_halves(&[link(1, zero, 2)], &parent, &root), None);
        // One half: the other one, whatever the members now call for.
        assert_eq!(
            open_halves(&[link(0, zero, 2)], &parent, &root),
            Some(vec![one])
        );
        assert_eq!(
            open_halves(&[link(0, one, 2)], &parent, &root),
            Some(vec![zero])
        );
        // Both halves, or a half beside an elder change: nothing left to start.
        let both = [link(0, zero, 2), link(0, one, 3)];
        assert_eq!(open_halves(&both, &parent, &root), Some(vec![]));
        let mixed = [link(0, root, 1), link(0, zero, 2)];
        assert_eq!(open_halves(&mixed, &parent, &root), Some(vec![]));
    }
}
