//! Maximum clique of the mutual-validity graph, via a minimum vertex cover of its complement.
//!
//! Seed 003 step 5 keeps "the maximal clique" of nodes that report correct shares from each other.
//! Maximum clique is NP-hard in general, but here the graph is nearly complete: an edge is missing
//! only where a participant failed or lied, so the complement is sparse and a clique `K` of size
//! `|V| - k` is exactly the complement of a vertex cover of size `k` of the complement graph. A
//! vertex cover of size at most `k` is found or ruled out by bounded search (branch on a vertex of
//! maximum degree: either it is in the cover, or all its neighbours are), in `O(1.47^k)` branches
//! when the maximum degree is at least 3 and `O(1.62^k)` otherwise, times `O(|V|^2)` per branch.
//! The callers bound `k` by `|V| - quorum` (a smaller clique is a failure anyway).
//!
//! The clique must be the same for everyone, so ties are broken deterministically: the result is
//! the lexicographically smallest (as an ascending list) among the maximum cliques. It is built
//! greedily: in ascending order, a vertex joins the clique if some maximum clique contains it
//! together with the vertices chosen so far, which one more bounded search decides.

/// Whether the alive part of the graph has a vertex cover of at most `budget` vertices.
fn cover_within(adj: &[Vec<usize>], alive: &mut [bool], budget: usize) -> bool {
    let mut best = usize::MAX;
    let mut best_degree = 0;
    let mut degree_sum = 0;
    for v in 0..adj.len() {
        if !alive[v] {
            continue;
        }
        let d = adj[v].iter().filter(|u| alive[**u]).count();
        degree_sum += d;
        if d > best_degree {
            best_degree = d;
            best = v;
        }
    }
    let edges = degree_sum / 2;
    if edges == 0 {
        return true;
    }
    // Each cover vertex covers at most `best_degree` edges.
    if budget == 0 || edges > budget * best_degree {
        return false;
    }
    if best_degree == 1 {
        // A matching: one endpoint per edge, and `edges <= budget` was checked above.
        return true;
    }
    let v = best;
    alive[v] = false;
    let found = cover_within(adj, alive, budget - 1);
    alive[v] = true;
    if found {
        return true;
    }
    // `v` stays out of the cover, so all its neighbours are in it.
    let neighbours: Vec<usize> = adj[v].iter().copied().filter(|u| alive[*u]).collect();
    if neighbours.len() > budget {
        return false;
    }
    for u in &neighbours {
        alive[*u] = false;
    }
    alive[v] = false;
    let found = cover_within(adj, alive, budget - neighbours.len());
    alive[v] = true;
    for u in &neighbours {
        alive[*u] = true;
    }
    found
}

/// A minimum vertex cover of the graph on `0..n` with the given edges, if one of at most `limit`
/// vertices exists. Among the minimum covers it returns the one whose complement (a maximum
/// independent set) is lexicographically smallest. The result is ascending.
pub fn min_vertex_cover(n: usize, edges: &[(usize, usize)], limit: usize) -> Option<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a == b || a >= n || b >= n || adj[a].contains(&b) {
            continue;
        }
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut alive = vec![true; n];
    let mut size = (0..=limit).find(|k| cover_within(&adj, &mut alive, *k))?;
    let mut cover = Vec::with_capacity(size);
    for v in 0..n {
        if !alive[v] {
            continue;
        }
        // Prefer `v` outside the cover: then its live neighbours are in it.
        let neighbours: Vec<usize> = adj[v].iter().copied().filter(|u| alive[*u]).collect();
        if neighbours.len() <= size {
            for u in &neighbours {
                alive[*u] = false;
            }
            alive[v] = false;
            if cover_within(&adj, &mut alive, size - neighbours.len()) {
                size -= neighbours.len();
                cover.extend(neighbours);
                continue;
            }
            for u in &neighbours {
                alive[*u] = true;
            }
            alive[v] = true;
        }
        alive[v] = false;
        cover.push(v);
        size -= 1;
    }
    cover.sort_unstable();
    Some(cover)
}

/// The lexicographically smallest maximum clique among `vertices` for the symmetric relation
/// `adjacent`, if its complement needs a vertex cover of at most `limit` vertices (i.e. the clique
/// has at least `vertices.len() - limit` members). `vertices` must be ascending and distinct.
pub fn maximum_clique(
    vertices: &[u32],
    adjacent: impl Fn(u32, u32) -> bool,
    limit: usize,
) -> Option<Vec<u32>> {
    let mut missing = Vec::new();
    for (a, va) in vertices.iter().enumerate() {
        for (b, vb) in vertices.iter().enumerate().skip(a + 1) {
            if !adjacent(*va, *vb) {
                missing.push((a, b));
            }
        }
    }
    let cover = min_vertex_cover(vertices.len(), &missing, limit)?;
    Some(
        vertices
            .iter()
            .enumerate()
            .filter(|(i, _)| cover.binary_search(i).is_err())
            .map(|(_, v)| *v)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_force_clique(n: usize, adjacent: &dyn Fn(usize, usize) -> bool) -> Vec<usize> {
        let mut best: Vec<usize> = Vec::new();
        for mask in 0u32..(1 << n) {
            let set: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
            let is_clique = set
                .iter()
                .all(|a| set.iter().all(|b| a == b || adjacent(*a, *b)));
            if is_clique && (set.len() > best.len() || (set.len() == best.len() && set < best)) {
                best = set;
            }
        }
        best
    }

    fn brute_force_cover_size(n: usize, edges: &[(usize, usize)]) -> usize {
        (0u32..(1 << n))
            .filter(|mask| {
                edges
                    .iter()
                    .all(|(a, b)| mask & (1 << a) != 0 || mask & (1 << b) != 0)
            })
            .map(|mask| mask.count_ones() as usize)
            .min()
            .unwrap_or(0)
    }

    #[test]
    fn small_cases() {
        assert_eq!(min_vertex_cover(0, &[], 0), Some(vec![]));
        assert_eq!(min_vertex_cover(3, &[], 0), Some(vec![]));
        // A triangle needs two; the lexicographically smallest clique of the complement keeps 0.
        assert_eq!(
            min_vertex_cover(3, &[(0, 1), (1, 2), (0, 2)], 5),
            Some(vec![1, 2])
        );
        assert_eq!(min_vertex_cover(3, &[(0, 1), (1, 2), (0, 2)], 1), None);
        // A star is covered by its centre.
        assert_eq!(
            min_vertex_cover(5, &[(2, 0), (2, 1), (2, 3), (2, 4)], 3),
            Some(vec![2])
        );
        let all = [3u32, 5, 8, 9];
        assert_eq!(maximum_clique(&all, |_, _| true, 0), Some(all.to_vec()));
        // 5 quarrels with everyone.
        assert_eq!(
            maximum_clique(&all, |a, b| a != 5 && b != 5, 2),
            Some(vec![3, 8, 9])
        );
        assert_eq!(maximum_clique(&all, |a, b| a != 5 && b != 5, 0), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn matches_brute_force(n in 0usize..11, density in 0u32..100, seed in any::<u64>()) {
            // A deterministic pseudo-random graph from the seed.
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let mut missing = Vec::new();
            for a in 0..n {
                for b in a + 1..n {
                    if (next() % 100) < density as u64 {
                        missing.push((a, b));
                    }
                }
            }
            let adjacent = |a: usize, b: usize| {
                let (x, y) = if a < b { (a, b) } else { (b, a) };
                !missing.contains(&(x, y))
            };
            let expected = brute_force_clique(n, &adjacent);
            let vertices: Vec<u32> = (0..n as u32).collect();
            let got = maximum_clique(&vertices, |a, b| adjacent(a as usize, b as usize), n)
                .expect("limit n always suffices");
            let got: Vec<usize> = got.iter().map(|v| *v as usize).collect();
            prop_assert_eq!(&got, &expected);

            let cover = min_vertex_cover(n, &missing, n).unwrap();
            prop_assert_eq!(cover.len(), brute_force_cover_size(n, &missing));
            for (a, b) in &missing {
                prop_assert!(cover.contains(a) || cover.contains(b));
            }
            // A limit below the optimum finds nothing; at the optimum it does.
            if !cover.is_empty() {
                prop_assert!(min_vertex_cover(n, &missing, cover.len() - 1).is_none());
            }
            prop_assert!(min_vertex_cover(n, &missing, cover.len()).is_some());
        }
    }
}
