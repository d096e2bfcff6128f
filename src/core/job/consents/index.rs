//! The contacts of SALESmanago's export file, kept small enough for a million of them: each as
//! a 128-bit digest of its id and of its e-mail (SHA-1, cut), its opt-outs in a byte and its
//! consents in a shared list, about 44 bytes a contact instead of a few hundred. A contact is
//! found by the digest of what Dynamics holds; SHA-1's resistance to collisions makes a wrong
//! match as unlikely as guessing a 128-bit key, even for addresses chosen to collide.

use crate::core::salesmanago::contact::{SmConsent, SmContact};
use crate::core::salesmanago::export::Exported;

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
    /// Its consents: `consents[first..first + count]`.
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

/// The file's contacts, found by SALESmanago id or by e-mail once [`Index::complete`].
#[derive(Default)]
pub(super) struct Index {
    entries: Vec<Entry>,
    consents: Vec<Consent>,
    names: Vec<String>,
    /// Entries with an e-mail, sorted by its digest.
    by_email: Vec<u32>,
}

impl Index {
    /// Contacts read so far.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps what the consent rule needs of `contact`.
    pub(super) fn push(&mut self, contact: Exported) {
        let mut flags = 0;
        for (value, known, out) in
            [(contact.opted_out, NEWSLETTER_KNOWN, NEWSLETTER_OUT), (contact.opted_out_phone, SMS_KNOWN, SMS_OUT)]
        {
            if let Some(opted_out) = value {
                flags |= known | if opted_out { out } else { 0 };
            }
        }
        let first = self.consents.len() as u32;
        if contact.consents.is_some() {
            flags |= CONSENTS_LISTED;
        }
        let listed = contact.consents.unwrap_or_default();
        for consent in listed.into_iter().take(usize::from(u16::MAX)) {
            let name = match self.names.iter().position(|n| *n == consent.name) {
                Some(at) => at,
                None => {
                    self.names.push(consent.name);
                    self.names.len() - 1
                }
            };
            let Ok(name) = u16::try_from(name) else { continue };
            self.consents.push(Consent { name, accepted: consent.accepted, opted_out: consent.opted_out });
        }
        let count = (self.consents.len() - first as usize) as u16;
        let email = contact.email.as_deref().map_or([0; 16], digest);
        self.entries.push(Entry { id: digest(&contact.id), email, flags, first, count });
    }

    /// Sorts what was read, so contacts can be found; an id listed twice is kept once.
    pub(super) fn complete(&mut self) {
        self.entries.sort_unstable_by_key(|e| e.id);
        self.entries.dedup_by(|a, b| a.id == b.id);
        let entries = &self.entries;
        let mut by_email: Vec<u32> =
            (0..entries.len() as u32).filter(|&i| entries[i as usize].email != [0; 16]).collect();
        by_email.sort_unstable_by(|&a, &b| entries[a as usize].email.cmp(&entries[b as usize].email));
        self.by_email = by_email;
    }

    /// The contact with this SALESmanago id.
    pub(super) fn by_id(&self, id: &str) -> Option<SmContact> {
        let key = digest(id);
        let at = self.entries.binary_search_by(|e| e.id.cmp(&key)).ok()?;
        Some(self.contact(&self.entries[at]))
    }

    /// The contact with this e-mail (lower-cased).
    pub(super) fn by_email(&self, email: &str) -> Option<SmContact> {
        let key = digest(email);
        let at = self.by_email.binary_search_by(|&i| self.entries[i as usize].email.cmp(&key)).ok()?;
        Some(self.contact(&self.entries[self.by_email[at] as usize]))
    }

    /// The contact as the mapping reads it: its opt-outs and consents.
    fn contact(&self, entry: &Entry) -> SmContact {
        let channel = |known: u8, out: u8| (entry.flags & known != 0).then_some(entry.flags & out != 0);
        let first = entry.first as usize;
        let consents = self.consents[first..first + usize::from(entry.count)]
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
        index.complete();
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
}
