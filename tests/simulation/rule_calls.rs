//! SALESmanago's rule calls: SALESmanago changes contacts (names, some too long for Dynamics,
//! and opt-outs), and each change makes a rule call to the relay. The calls arrive in random
//! order, some twice, some never, in bursts of random size, each burst driven as the relay
//! drives it ([`rules::job`]) under faults; then, without faults, one call is made again, and
//! Pull changes catches up.
//!
//! Checks: after a burst whose lookups all answered, each contact it named holds SALESmanago's
//! opt-out, and its name or the reason it was refused; a call made again writes nothing; after
//! the catch-up, nothing a lost or failed call carried is lost.

use salesmanago_dynamics::core::command::BulkJob;
use salesmanago_dynamics::core::dataverse::schema::contact;
use salesmanago_dynamics::core::job::deliveries::BurstStart;
use salesmanago_dynamics::core::job::lease::User;
use salesmanago_dynamics::core::job::rules;
use salesmanago_dynamics::core::json::Value;
use salesmanago_dynamics::core::salesmanago::rule::RuleCall;

use super::salesmanago::SmRecord;
use super::{for_each_seed, size, Faults, Summary, World, START};

impl World {
    /// Drives one burst of `calls` as the relay does: the record and the consent columns as
    /// read for it, then the job.
    fn rule_burst(&mut self, calls: &[RuleCall]) -> Result<Summary, String> {
        let start = BurstStart {
            records: vec![self.dataverse.record.clone()],
            consents: vec!["new_consent_marketing".into()],
            client: self.settings().client,
            user: User { id: "u-1".into(), name: "Application user".into() },
            now_ms: self.local(),
            seed: self.rng.next(),
        };
        let mut job = rules::job(calls, start).map_err(|answer| format!("{answer:?}"))?;
        let (reads, version) = (self.dataverse.record_reads, self.dataverse.version);
        let ended = self.drive_with(&mut job, None, &mut Vec::new()).expect("driven to the end");
        // A rule's call leaves no trace on the record, and reads nothing of it (the relay read it).
        assert_eq!(
            (self.dataverse.record_reads, self.dataverse.version),
            (reads, version),
            "a rule's call used the record"
        );
        ended
    }

    /// Whether Dynamics holds what SALESmanago says of `sm`, or `summary` says why not.
    fn holds(&self, sm: &SmRecord, summary: &Summary) {
        let Some((id, row)) = self.dataverse.matching(sm) else { return };
        if sm.opted_out {
            let held = row.get(contact::DO_NOT_BULK_EMAIL);
            assert_eq!(held, Some(&Value::Bool(true)), "opt-out of {id} lost: {sm:?} {row:?}");
        }
        // Dynamics refuses some names (too long for its columns); the summary lists those.
        let reported = summary.tally.not_done.iter().any(|n| &n.id == id);
        assert!(reported || self.dataverse.holds_name(row, sm), "{id}: neither applied nor reported: {sm:?} {row:?}");
    }
}

fn call(sm: &SmRecord, by_id: bool) -> RuleCall {
    RuleCall { contact: by_id.then(|| sm.id.clone()), email: Some(sm.email.clone()), rule: "r".into() }
}

fn rule_calls(seed: u64, contacts: usize) {
    let mut world = World::new(seed, contacts);
    world.salesmanago.change_some(&mut world.rng, &world.dataverse, 300, (START, 3_000_000));
    world.now = START + 3_600_000;
    let changed: Vec<SmRecord> = world.salesmanago.changed().cloned().collect();
    // Each change calls once (a few without the contact's id); some twice, some never.
    let mut calls: Vec<(usize, RuleCall)> = Vec::new();
    for (index, sm) in changed.iter().enumerate() {
        let by_id = !world.rng.chance(100);
        let times = match world.rng.below(10) {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        calls.extend((0..times).map(|_| (index, call(sm, by_id))));
    }
    for i in (1..calls.len()).rev() {
        let j = world.rng.below(i as u64 + 1) as usize;
        calls.swap(i, j);
    }
    while !calls.is_empty() {
        let take = (1 + world.rng.below(60) as usize).min(calls.len());
        let burst: Vec<(usize, RuleCall)> = calls.drain(..take).collect();
        world.another_browser();
        let named: Vec<RuleCall> = burst.iter().map(|(_, call)| call.clone()).collect();
        let record = world.dataverse.record.clone();
        let result = world.rule_burst(&named);
        // A call leaves no trace on the integration record: no summary, no watermark, no lease.
        assert!(world.dataverse.record == record, "a rule's call changed the integration record");
        let Ok(summary) = result else { continue };
        assert!(summary.tally.adds_up(), "{:?}", summary.tally);
        // A lookup that failed names no contact: those wait for the catch-up.
        if summary.tally.not_done.iter().any(|n| n.id.is_empty()) {
            continue;
        }
        for (index, _) in &burst {
            world.holds(&changed[*index], &summary);
        }
        world.now += world.rng.below(2_000);
    }
    // A call made again, once nothing fails: SALESmanago is read, Dynamics changed in nothing
    // (a write it refused is tried again, and refused again).
    world.dataverse.faults = Faults::default();
    world.salesmanago.faults = Faults::default();
    if let Some(sm) = changed.first() {
        let first = world.rule_burst(&[call(sm, true)]).expect("a clean burst succeeds");
        let (version, batches) = (world.dataverse.version, world.dataverse.batches);
        let again = world.rule_burst(&[call(sm, true)]).expect("a clean burst succeeds");
        assert_eq!(world.dataverse.version, version, "{:?}", again.tally);
        if first.tally.not_done.is_empty() {
            assert_eq!(world.dataverse.batches, batches, "a repeated call wrote: {:?}", again.tally);
        }
    }
    // Pull changes catches up what the calls lost or failed.
    world.now += 60_000;
    let caught_up = world.run(BulkJob::PullChanges, 0).expect("a clean pull succeeds");
    for sm in &changed {
        world.holds(sm, &caught_up);
    }
}

#[test]
fn rule_calls_apply_salesmanagos_changes_once_and_pull_changes_catches_up_the_rest() {
    for_each_seed("rule_calls", |seed| size(seed) / 4, rule_calls);
}
