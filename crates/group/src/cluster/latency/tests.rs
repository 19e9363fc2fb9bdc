use std::sync::Arc;
use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn member(answers: &[u64]) -> Arc<Latency> {
    let latency = Arc::new(Latency::default());
    for &a in answers {
        latency.observe(ms(a));
    }
    latency
}

#[test]
fn the_average_moves_a_quarter_of_the_way() {
    let l = member(&[100]);
    assert_eq!(l.read(), (100_000_000, 1));
    l.observe(ms(200));
    assert_eq!(l.read().0, 125_000_000);
    l.restart(ms(8));
    assert_eq!(l.read(), (8_000_000, 1));
}

#[test]
fn a_member_far_slower_than_the_median_of_the_others_is_slow() {
    let policy = HealthPolicy::default(); // factor 5, floor 100 ms, 8 samples
    let fast = [member(&[2; 8]), member(&[3; 8]), member(&[200; 8])];
    let slow = member(&[300; 8]);
    let board = Board::default();
    board.replace(fast.iter().cloned().chain([Arc::clone(&slow)]).collect());
    // The others' median is 3 ms; 5x that is under the floor, so the floor decides.
    assert_eq!(board.threshold(&slow, &policy), Some(ms(100)));
    assert!(board.is_slow(&slow, &policy));
    assert!(!board.is_slow(&fast[0], &policy));
    // 200 ms is over the floor and over 5x the median of 2, 3 and 300 (3 ms): slow too.
    assert!(board.is_slow(&fast[2], &policy));
}

#[test]
fn without_enough_answers_or_anyone_to_compare_with_nothing_is_slow() {
    let policy = HealthPolicy::default();
    let board = Board::default();
    let slow = member(&[900; 8]);
    board.replace(vec![Arc::clone(&slow)]);
    assert_eq!(
        board.threshold(&slow, &policy),
        None,
        "a cluster of two cannot compare"
    );
    let young = member(&[2; 7]);
    board.replace(vec![Arc::clone(&slow), Arc::clone(&young)]);
    assert!(
        !board.is_slow(&slow, &policy),
        "the other has too few answers to count"
    );
    let newcomer = member(&[900; 7]);
    board.replace(vec![member(&[2; 8]), Arc::clone(&newcomer)]);
    assert!(
        !board.is_slow(&newcomer, &policy),
        "too few answers to judge"
    );
    let off = policy.with_slow(0, ms(100));
    board.replace(vec![member(&[2; 8]), Arc::clone(&slow)]);
    assert!(!board.is_slow(&slow, &off));
}
