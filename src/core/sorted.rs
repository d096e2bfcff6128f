//! [`SortedMap`]: a map kept as a vector sorted by key.
//!
//! The engine's maps are small (a row's columns, a batch's e-mails) and each `BTreeMap` key and
//! value type compiled about 6 KB of node code into the wasm. A sorted vector behaves the same
//! for these uses (ordered iteration, logarithmic lookup) at a fraction of the size, and reads
//! faster at these sizes.

use crate::prelude::*;
use ::core::borrow::Borrow;
use ::core::fmt;

/// Sorts `items` ascending by the standard library's heap sort (`BinaryHeap`). In the engine its
/// code is a fraction of the slice sort's (a pattern-defeating quicksort with small-sort paths,
/// one copy per element type); the lists sorted are short (a page's ids, a row's columns).
pub fn sort<T: Ord>(items: &mut Vec<T>) {
    *items = alloc::collections::BinaryHeap::from(::core::mem::take(items)).into_sorted_vec();
}

/// A map sorted by key; each key at most once.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap(Vec::new())
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, v))).finish()
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        SortedMap(Vec::new())
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &self.0[at].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &mut self.0[at].1)
    }

    /// Whether `key` is present.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets `key`, as [`SortedMap::insert`] does, for keys that come mostly in order: one after
    /// every other goes at the end without a search.
    pub fn append(&mut self, key: K, value: V) {
        match self.0.last().is_none_or(|(last, _)| *last < key) {
            true => self.0.push((key, value)),
            false => {
                self.insert(key, value);
            }
        }
    }

    /// Sets `key`; returns the old value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(::core::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| self.0.remove(at).1)
    }

    /// Keeps the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The keys in order, taken.
    pub fn into_keys(self) -> impl Iterator<Item = K> {
        self.0.into_iter().map(|(k, _)| k)
    }

    /// Makes room for `more` entries at once.
    pub fn reserve(&mut self, more: usize) {
        self.0.reserve(more);
    }

    /// Gives back the room no entry uses.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Ord, V> Extend<(K, V)> for SortedMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = SortedMap::new();
        map.extend(entries);
        map
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = alloc::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = ::core::iter::Map<::core::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> ::core::ops::Index<&Q> for SortedMap<K, V> {
    type Output = V;
    /// The value of `key`; panics when it is missing, as `BTreeMap` does.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_an_ordered_map() {
        let mut map: SortedMap<String, u32> = [("b".to_owned(), 2), ("a".to_owned(), 1)].into_iter().collect();
        assert_eq!(map.insert("c".into(), 3), None);
        assert_eq!(map.insert("a".into(), 10), Some(1));
        assert_eq!(map.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(map["a"], 10);
        assert_eq!(map.get("z"), None);
        assert!(map.contains_key("b"));
        assert_eq!(map.remove("b"), Some(2));
        map.retain(|k, _| k != "c");
        assert_eq!(map.len(), 1);
        assert_eq!(format!("{map:?}"), r#"{"a": 10}"#);
    }
}
