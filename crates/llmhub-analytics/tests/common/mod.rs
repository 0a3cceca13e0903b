//! Test fixtures shared by the integration tests: a small seeded generator, so every series is
//! reproducible from its seed.
#![allow(dead_code)]

/// xorshift64* with a splitmix64-scrambled seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform in (-half_width, half_width).
    pub fn symmetric(&mut self, half_width: f64) -> f64 {
        (2.0 * self.uniform() - 1.0) * half_width
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

/// Indexes of the flagged points.
pub fn flagged(scored: &[llmhub_analytics::Scored]) -> Vec<usize> {
    scored
        .iter()
        .enumerate()
        .filter(|(_, s)| s.anomaly)
        .map(|(i, _)| i)
        .collect()
}
