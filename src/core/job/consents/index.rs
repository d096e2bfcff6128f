//! The contacts of SALESmanago's export file, kept small enough for a million of them: each as
//! a 128-bit digest of its id and of its e-mail (SHA-1, cut), its opt-outs in a byte and its
//! consents in a shared list, about 52 bytes a contact instead of a few hundred. A contact is
//! found by the digest of what Dynamics holds; SHA-1's resistance to collisions makes a wrong
//! match as unlikely as guessing a 128-bit key, even for addresses chosen to collide.
//!
//! Each contact is filed as it is read, so the file is ready when its last part is: a sort of
//! the whole file at its end would hold the tab's thread for tens of milliseconds at 100,000
//! contacts, and ten times that at a million.

use crate::core::salesmanago::contact::{SmConsent, SmContact};
use crate::core::salesmanago::export::Exported;
use crate::prelude::*;

type Digest = [u8; 16];

fn digest(text: &str) -> Digest {
    let full = sha1_smol::Sha1::from(text).digest().bytes();
    let mut cut = [0; 16];
    cut.copy_from_slice(&full[..16]);
    cut
}

/// Two bits a channel: known, and opted out.
const NEWSLETTER_KNOWN: u8 = 1;
const NEWSLETTER_OUT: u8 = 2;
const SMS_KNOWN: u8 = 4;
const SMS_OUT: u8 = 8;
/// The entry had a consents part.
const CONSENTS_LISTED: u8 = 16;

struct Entry {
    id: Digest,
    /// All zero when the entry has no e-mail.
    email: Digest,
    flags: u8,
    /// Its consents: `count` of them in [`Index::consents`] from `first`.
    first: u32,
    count: u16,
}

/// One consent: its name's number in [`Index::names`], given, withdrawn.
#[derive(Clone, Copy)]
struct Consent {
    name: u16,
    accepted: bool,
    opted_out: bool,
}

/// A list kept in blocks of 4,096 items, so that it never copies what it holds as it grows (a
/// doubling vector copies all of it now and then: 20 MB in one task at a million contacts). An
/// item's address is its block's number times 4,096 plus its place in the block; a run of items
/// pushed together stays in one block.
struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks { blocks: Vec::new(), len: 0 }
    }
}

impl<T> Blocks<T> {
    const BLOCK: usize = 1 << 12;

    /// Items pushed.
    fn len(&self) -> usize {
        self.len
    }

    /// Pushes `count` items side by side (at most [`Self::BLOCK`]); the first one's address.
    fn push_run(&mut self, count: usize, items: impl IntoIterator<Item = T>) -> u32 {
        debug_assert!(count <= Self::BLOCK);
        if self.blocks.last().is_none_or(|b| b.len() + count > Self::BLOCK) {
            self.blocks.push(Vec::with_capacity(Self::BLOCK));
        }
        let at = self.blocks.len() - 1;
        let block = &mut self.blocks[at];
        let address = (at * Self::BLOCK + block.len()) as u32;
        block.extend(items.into_iter().take(count));
        self.len += block.len() - (address as usize % Self::BLOCK);
        address
    }

    /// Pushes `item`; its address.
    fn push(&mut self, item: T) -> u32 {
        self.push_run(1, [item])
    }

    /// The `count` items from `address`.
    fn run(&self, address: u32, count: usize) -> &[T] {
        if count == 0 {
            return &[];
        }
        let (block, at) = (address as usize / Self::BLOCK, address as usize % Self::BLOCK);
        &self.blocks[block][at..at + count]
    }

    /// The item at `address`.
    fn get(&self, address: u32) -> &T {
        &self.run(address, 1)[0]
    }
}

/// Entry numbers filed by a digest: in one of 4,096 buckets by its first 12 bits (digests are
/// uniform, so a bucket holds about 250 at a million contacts), each bucket kept in the
/// digest's order, entries of equal digests in the order they came.
#[derive(Default)]
struct Buckets(Vec<Vec<u32>>);

impl Buckets {
    const COUNT: usize = 1 << 12;

    fn bucket(key: &Digest) -> usize {
        usize::from(key[0]) << 4 | usize::from(key[1] >> 4)
    }

    /// The first entry filed under `key`; `of` gives an entry's digest.
    fn first<'a>(&self, key: &Digest, of: impl Fn(u32) -> &'a Digest) -> Option<u32> {
        let bucket = self.0.get(Self::bucket(key))?;
        let at = bucket.partition_point(|&i| of(i) < key);
        bucket.get(at).copied().filter(|&i| of(i) == key)
    }

    /// Files `entry` under `key`, after those filed under it already.
    fn file<'a>(&mut self, key: &Digest, entry: u32, of: impl Fn(u32) -> &'a Digest) {
        if self.0.is_empty() {
            self.0.resize_with(Self::COUNT, Vec::new);
        }
        let bucket = &mut self.0[Self::bucket(key)];
        let at = bucket.partition_point(|&i| of(i) <= key);
        bucket.insert(at, entry);
    }
}

/// The file's contacts, found by SALESmanago id or by e-mail.
#[derive(Default)]
pub(super) struct Index {
    entries: Blocks<Entry>,
    consents: Blocks<Consent>,
    names: Vec<String>,
    by_id: Buckets,
    /// Entries with an e-mail.
    by_email: Buckets,
}

impl Index {
    /// Contacts read so far (an id listed twice counts once).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps what the consent rule needs of `contact`. An id listed twice is kept as first
    /// listed; of two contacts with one e-mail, the first listed is found by it.
    pub(super) fn push(&mut self, contact: Exported) {
        let id = digest(&contact.id);
        let Self { entries, consents, names, by_id, by_email } = self;
        if by_id.first(&id, |i| &entries.get(i).id).is_some() {
            return;
        }
        let mut flags = 0;
        for (value, known, out) in
            [(contact.opted_out, NEWSLETTER_KNOWN, NEWSLETTER_OUT), (contact.opted_out_phone, SMS_KNOWN, SMS_OUT)]
        {
            if let Some(opted_out) = value {
                flags |= known | if opted_out { out } else { 0 };
            }
        }
        if contact.consents.is_some() {
            flags |= CONSENTS_LISTED;
        }
        // A contact's consents stay side by side; more than a block's worth (no account has
        // thousands of consents) are not kept.
        let mut listed = Vec::new();
        for consent in contact.consents.unwrap_or_default().into_iter().take(Blocks::<Consent>::BLOCK) {
            let name = match names.iter().position(|n| *n == consent.name) {
                Some(at) => at,
                None => {
                    names.push(consent.name);
                    names.len() - 1
                }
            };
            let Ok(name) = u16::try_from(name) else { continue };
            listed.push(Consent { name, accepted: consent.accepted, opted_out: consent.opted_out });
        }
        let count = listed.len() as u16;
        let first = consents.push_run(listed.len(), listed);
        let email = contact.email.as_deref().map_or([0; 16], digest);
        let number = entries.push(Entry { id, email, flags, first, count });
        by_id.file(&id, number, |i| &entries.get(i).id);
        if email != [0; 16] {
            by_email.file(&email, number, |i| &entries.get(i).email);
        }
    }

    /// The contact with this SALESmanago id.
    pub(super) fn by_id(&self, id: &str) -> Option<SmContact> {
        let at = self.by_id.first(&digest(id), |i| &self.entries.get(i).id)?;
        Some(self.contact(self.entries.get(at)))
    }

    /// The contact with this e-mail (lower-cased).
    pub(super) fn by_email(&self, email: &str) -> Option<SmContact> {
        let at = self.by_email.first(&digest(email), |i| &self.entries.get(i).email)?;
        Some(self.contact(self.entries.get(at)))
    }

    /// The contact as the mapping reads it: its opt-outs and consents.
    fn contact(&self, entry: &Entry) -> SmContact {
        let channel = |known: u8, out: u8| (entry.flags & known != 0).then_some(entry.flags & out != 0);
        let consents = self
            .consents
            .run(entry.first, usize::from(entry.count))
            .iter()
            .map(|c| SmConsent {
                name: self.names[usize::from(c.name)].clone(),
                accepted: c.accepted,
                opted_out: c.opted_out,
                date: None,
            })
            .collect();
        SmContact {
            opted_out: channel(NEWSLETTER_KNOWN, NEWSLETTER_OUT),
            opted_out_phone: channel(SMS_KNOWN, SMS_OUT),
            consents,
            consents_listed: entry.flags & CONSENTS_LISTED != 0,
            ..SmContact::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::consent::{Key, Theirs};

    fn exported(
        id: &str,
        email: Option<&str>,
        opted_out: Option<bool>,
        consents: Option<Vec<(&str, bool)>>,
    ) -> Exported {
        Exported {
            id: id.into(),
            email: email.map(str::to_owned),
            opted_out,
            opted_out_phone: None,
            consents: consents.map(|list| {
                list.into_iter()
                    .map(|(name, given)| SmConsent {
                        name: name.into(),
                        accepted: given,
                        opted_out: !given,
                        date: None,
                    })
                    .collect()
            }),
        }
    }

    #[test]
    fn contacts_are_found_by_id_or_e_mail_with_their_opt_outs_and_consents() {
        let mut index = Index::default();
        index.push(exported("b", Some("b@x.pl"), Some(true), Some(vec![("MARKETING", false), ("PROFILING", true)])));
        index.push(exported("a", None, None, None));
        index.push(exported("c", Some("c@x.pl"), Some(false), Some(Vec::new())));
        let b = index.by_email("b@x.pl").expect("by e-mail");
        assert_eq!(b.theirs(&Key::Newsletter), Theirs::Known(Some(false)));
        assert_eq!(b.theirs(&Key::Sms), Theirs::Unknown);
        assert_eq!(b.theirs(&Key::Consent("MARKETING".into())), Theirs::Known(Some(false)));
        assert_eq!(b.theirs(&Key::Consent("PROFILING".into())), Theirs::Known(Some(true)));
        let a = index.by_id("a").expect("by id");
        assert_eq!(a.theirs(&Key::Consent("MARKETING".into())), Theirs::Unknown, "no consents part");
        let c = index.by_id("c").expect("by id");
        assert_eq!(c.theirs(&Key::Consent("MARKETING".into())), Theirs::Known(None), "listed, not among them");
        assert_eq!(c.theirs(&Key::Newsletter), Theirs::Known(Some(true)));
        assert!(index.by_id("d").is_none() && index.by_email("a@x.pl").is_none() && index.by_email("").is_none());
    }

    #[test]
    fn an_id_listed_twice_is_kept_as_first_listed_and_one_e_mail_finds_its_first_contact() {
        let mut index = Index::default();
        index.push(exported("a", Some("same@x.pl"), Some(true), Some(vec![("MARKETING", true)])));
        index.push(exported("a", Some("other@x.pl"), Some(false), Some(vec![("MARKETING", false)])));
        index.push(exported("b", Some("same@x.pl"), Some(false), None));
        assert_eq!(index.len(), 2, "the repeated id counts once");
        let a = index.by_id("a").expect("by id");
        assert_eq!(a.theirs(&Key::Newsletter), Theirs::Known(Some(false)), "the first listing's opt-out");
        assert_eq!(a.theirs(&Key::Consent("MARKETING".into())), Theirs::Known(Some(true)));
        assert!(index.by_email("other@x.pl").is_none(), "the second listing of a is dropped whole");
        let same = index.by_email("same@x.pl").expect("by e-mail");
        assert_eq!(same.theirs(&Key::Newsletter), Theirs::Known(Some(false)), "a, listed before b");
        assert_eq!(index.consents.len(), 1, "the dropped listing's consents are not kept");
    }

    #[test]
    fn every_contact_of_a_large_file_is_found_whatever_order_it_came_in() {
        let mut index = Index::default();
        // More contacts than buckets, in an order unrelated to their digests.
        // 20,011 is prime, so these are 20,000 different numbers.
        let ids: Vec<u32> = (0..20_000u32).map(|i| i * 7_919 % 20_011).collect();
        for &i in &ids {
            let opted_out = Some(i % 2 == 0);
            index.push(exported(
                &format!("id-{i}"),
                (i % 3 != 0).then(|| format!("c{i}@x.pl")).as_deref(),
                opted_out,
                None,
            ));
        }
        assert_eq!(index.len(), ids.len());
        for &i in &ids {
            let by_id = index.by_id(&format!("id-{i}")).unwrap_or_else(|| panic!("id-{i} by id"));
            assert_eq!(by_id.theirs(&Key::Newsletter), Theirs::Known(Some(i % 2 != 0)), "id-{i}");
            let by_email = index.by_email(&format!("c{i}@x.pl"));
            assert_eq!(by_email.is_some(), i % 3 != 0, "c{i}@x.pl");
            if let Some(found) = by_email {
                assert_eq!(found.theirs(&Key::Newsletter), Theirs::Known(Some(i % 2 != 0)), "c{i}@x.pl");
            }
        }
        assert!(index.by_id("id-20011").is_none() && index.by_email("c20011@x.pl").is_none());
        // Spread over the 4,096 buckets (5 a bucket on average), so that filing one stays
        // quick at a million contacts: nearly all hold some, none holds many.
        let sizes: Vec<usize> = index.by_id.0.iter().map(Vec::len).collect();
        let (used, most) = (sizes.iter().filter(|&&n| n > 0).count(), sizes.iter().max().copied());
        assert!(sizes.len() == Buckets::COUNT && used > 4_000 && most < Some(25), "{used} used, {most:?} at most");
    }

    #[test]
    fn blocks_keep_runs_together_and_find_every_item_across_blocks() {
        let mut blocks = Blocks::default();
        let single: Vec<u32> = (0..5_000u32).map(|i| blocks.push(i)).collect();
        assert_eq!(single[4_095], 4_095);
        assert_eq!(single[4_096], 4_096, "the second block follows the first");
        let run = blocks.push_run(3_500, 10_000..13_500u32);
        assert_eq!(run, 2 * 4_096, "a run that does not fit where the last block ends starts a new block");
        let empty = blocks.push_run(0, []);
        assert_eq!(blocks.run(empty, 0), &[] as &[u32]);
        assert_eq!(blocks.len(), 8_500);
        for (i, &address) in single.iter().enumerate() {
            assert_eq!(*blocks.get(address), i as u32);
        }
        assert_eq!(blocks.run(run, 3_500), (10_000..13_500u32).collect::<Vec<_>>().as_slice());
        // A full block, then an empty run: its address is past every block, and reads nothing.
        let mut full = Blocks::default();
        full.push_run(4_096, 0..4_096u32);
        let past = full.push_run(0, []);
        assert!(full.run(past, 0).is_empty());
    }
}
