#!/bin/sh
# `npm run mutants [-- <cargo-mutants options>]`: mutation testing of the core's decision code
# (the jobs, the consent rule, the tally, the mapping), each mutant tried against the unit tests
# and the simulation (.cargo/mutants.toml, built with the `mutants` profile). `-f <file>` narrows
# it to files of your choice. Not part of `npm test`: at about 5 s a mutant on 2 idle cores
# (two builds of the crate, about 4 s side by side; the simulation stops at its first failure),
# the whole set (about 1,860) takes some 2.5 hours. `-- --iterate` goes on from the last run's
# `mutants.out/`, skipping what it caught; `-- --shard k/n` runs a part.
# Installs cargo-mutants at the version below when it is missing. SIM_SEEDS sets the
# simulation's seeds a mutant must survive (1-20,25: seed 25 has 6,975 contacts, enough for Export
# all's checkpoint, saved every 4,000; the others have fewer than 1,300); SIM_FAIL_FAST stops its other scenarios once one
# failed (cargo test already skips the simulation when a unit test failed).
set -eu
VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$VERSION"; then
  cargo install cargo-mutants --locked --version "$VERSION"
fi
case " $* " in
  *" -f "* | *" --file "* | *" --file="*) files="" ;;
  *) files="-f src/core/job/**/*.rs -f src/core/consent.rs -f src/core/sync.rs -f src/core/mapping/**/*.rs -f src/core/scope/**/*.rs" ;;
esac
# The globs reach cargo-mutants unexpanded.
set -f
SIM_FAIL_FAST=1 SIM_SEEDS="${SIM_SEEDS:-1-20,25}" exec cargo mutants --package salesmanago-dynamics $files "$@"
