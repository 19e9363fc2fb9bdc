use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Rate, RateCell, TAU_SECS, TICKS_PER_SEC, Tick};
use crate::cache::Entry;

/// What a rate should read: the sum over every request of `e^(-age / TAU) / TAU`, in `f64`
/// and from the whole history, where `Rate` folds each request into one `f32` as it comes.
#[derive(Default)]
struct Model {
    requests: Vec<u32>,
}

impl Model {
    fn at(&self, now: u32) -> f64 {
        let tau = f64::from(TAU_SECS);
        (self.requests.iter())
            .map(|&at| {
                let age = f64::from(now - at) / f64::from(TICKS_PER_SEC);
                (-age / tau).exp() / tau
            })
            .sum()
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Time moves on by `gap` ticks, then a request comes, counted at a time `lag` ticks
    /// behind (a hit that read the clock's hand rather than the clock).
    Hit { gap: u32, lag: u32 },
    /// Time moves on by this many ticks, then the rate is read.
    Read(u32),
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly requests close together (a busy key), sometimes minutes apart (a key going cold).
    let gap = prop_oneof![4 => 0..16u32, 2 => 0..1_000u32, 1 => 0..100_000u32];
    // The hand is at most a move (four ticks) behind; most hits read it exactly on time.
    let lag = prop_oneof![2 => Just(0u32), 1 => 0..=4u32];
    prop_oneof![
        3 => (gap.clone(), lag).prop_map(|(gap, lag)| Op::Hit { gap, lag }),
        1 => gap.prop_map(Op::Read),
    ]
}

proptest! {
    /// The rate agrees with the sum over its history, within what `f32` keeps: one request
    /// adds `1 / 60`, so a relative error of 1e-4 is far below anything admission looks at.
    /// A request counted at a time behind the last one counts at the last one's time.
    #[test]
    fn the_rate_agrees_with_the_decayed_sum_of_its_requests(
        start in 0..1_000_000u32,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut now = start;
        let mut rate = Rate::first(Tick(now));
        let mut model = Model { requests: vec![now] };
        for op in ops {
            match op {
                Op::Hit { gap, lag } => {
                    now += gap;
                    let counted = now.saturating_sub(lag);
                    rate.hit(Tick(counted));
                    let last = model.requests.iter().copied().max().unwrap_or(counted);
                    model.requests.push(counted.max(last));
                }
                Op::Read(gap) => now += gap,
            }
            let (got, want) = (f64::from(rate.at(Tick(now))), model.at(now));
            prop_assert!(
                (got - want).abs() <= want * 1e-4 + 1e-9,
                "rate {got} against model {want} at tick {now}"
            );
            prop_assert!(rate.latest() >= rate.at(Tick(now)), "a rate only decays between requests");
        }
    }
}

proptest! {
    /// The cell an entry keeps holds the rate whole: moving it there is moving the rate.
    #[test]
    fn a_rate_cell_moves_as_the_rate_it_holds(
        start in any::<u32>(),
        gaps in proptest::collection::vec(0..100_000u32, 0..20),
    ) {
        let mut now = start;
        let mut rate = Rate::first(Tick(now));
        let cell = RateCell::new(rate);
        for gap in gaps {
            now = now.wrapping_add(gap);
            rate.hit(Tick(now));
            cell.hit(Tick(now));
            prop_assert_eq!(cell.get(), rate);
            prop_assert_eq!(cell.clone().get(), rate);
        }
    }
}

#[test]
fn a_steady_stream_of_requests_reads_as_its_rate() {
    // Four requests a second for ten minutes: ten time constants, so the start is forgotten.
    let mut rate = Rate::first(Tick(0));
    let every = TICKS_PER_SEC / 4;
    for i in 1..=(4 * 600) {
        rate.hit(Tick(i * every));
    }
    let got = rate.latest();
    assert!((got - 4.0).abs() < 0.05 * 4.0, "{got}");
    // A minute without requests leaves e^-1 of it.
    let later = rate.at(Tick(4 * 600 * every + 60 * TICKS_PER_SEC));
    assert!((later - got / std::f32::consts::E).abs() < 1e-3, "{later}");
}

#[test]
fn a_time_behind_the_last_request_reads_the_last_rate() {
    // Two hits race: the later one read the clock first. Its rate must not be decayed by a
    // gap of four billion ticks.
    let mut rate = Rate::first(Tick(1_000));
    rate.hit(Tick(1_000));
    let before = rate.latest();
    assert_eq!(rate.at(Tick(999)), before);
    rate.hit(Tick(999));
    assert!((rate.latest() - (before + Rate::FIRST)).abs() < 1e-6);
    // Across the wrap of the tick counter, time still moves forward.
    let mut wrapped = Rate::first(Tick(u32::MAX - 15));
    let one_second_on = wrapped.at(Tick(0));
    assert!((one_second_on - Rate::FIRST * (-1.0 / TAU_SECS).exp()).abs() < 1e-6);
    wrapped.hit(Tick(0));
    assert!(wrapped.latest() > Rate::FIRST);
}

#[test]
fn ticks_count_sixteenths_of_a_second() {
    let epoch = Instant::now();
    assert_eq!(Tick::since(epoch, epoch), Tick(0));
    assert_eq!(
        Tick::since(epoch, epoch + Duration::from_millis(62)),
        Tick(0)
    );
    assert_eq!(
        Tick::since(epoch, epoch + Duration::from_millis(63)),
        Tick(1)
    );
    assert_eq!(Tick::since(epoch, epoch + Duration::from_secs(2)), Tick(32));
    // A time before the epoch is the epoch.
    assert_eq!(Tick::since(epoch + Duration::from_secs(1), epoch), Tick(0));
}

#[test]
fn the_rate_costs_an_entry_eight_bytes() {
    // The value (a `bytes::Bytes`, 32 bytes); the rate's `f32` and `u32` add 8, with no
    // padding. The deadline is the cache's, in its slot, not the entry's.
    assert_eq!(size_of::<Rate>(), 8);
    assert_eq!(size_of::<RateCell>(), 8);
    assert!(size_of::<Entry>() <= 40, "{}", size_of::<Entry>());
}
