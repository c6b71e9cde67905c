//! Test-only helpers shared by the codec tests: hex literals, and the random and mutated
//! inputs that the robustness tests feed to the parsers.

/// Bytes from a hex string such as `"0a0b00"` (test literals only: panics on bad input).
pub(super) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// xorshift64: small, deterministic, good enough to shake parsers.
pub(super) struct XorShift(pub(super) u64);

impl XorShift {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Applies one to four random edits to `input`: bit flips, byte changes, truncation,
/// insertion of one of `inserted` (bytes that matter to the formats), removal, appending.
pub(super) fn mutate(rng: &mut XorShift, input: &mut Vec<u8>, inserted: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let len = rng.below(input.len() + 1);
                input.truncate(len);
            }
            3 => {
                let i = rng.below(input.len() + 1);
                input.insert(i, inserted[rng.below(inserted.len())]);
            }
            4 if !input.is_empty() => {
                let i = rng.below(input.len());
                input.remove(i);
            }
            _ => input.push(rng.next() as u8),
        }
    }
}

/// How [`shake`] makes its inputs.
pub(super) struct Shake<'a> {
    /// Seed of the xorshift generator.
    pub(super) rng_seed: u64,
    /// How many inputs to make.
    pub(super) rounds: usize,
    /// Valid inputs; three in four inputs are one of them, mutated.
    pub(super) seeds: &'a [Vec<u8>],
    /// First bytes of the purely random inputs (one in four), taken in turn.
    pub(super) first_bytes: &'a [u8],
    /// Bytes that mutation may insert.
    pub(super) inserted: &'a [u8],
}

/// Checks that every seed is accepted by some parser, then feeds `exercise` random and mutated
/// inputs; returns the sum of what it returned for them (how many parsers accepted them).
pub(super) fn shake(plan: &Shake<'_>, mut exercise: impl FnMut(&[u8]) -> usize) -> usize {
    for seed in plan.seeds {
        assert!(
            exercise(seed) > 0,
            "seed {seed:02x?} is valid for some parser"
        );
    }
    let mut accepted = 0;
    let mut rng = XorShift(plan.rng_seed);
    for i in 0..plan.rounds {
        let input = if i % 4 == 0 {
            // Purely random bytes, biased towards interesting first bytes.
            let len = rng.below(64);
            let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(first) = v.first_mut() {
                *first = plan.first_bytes[i % plan.first_bytes.len()];
            }
            v
        } else {
            let mut v = plan.seeds[rng.below(plan.seeds.len())].clone();
            mutate(&mut rng, &mut v, plan.inserted);
            v
        };
        accepted += exercise(&input);
    }
    accepted
}
