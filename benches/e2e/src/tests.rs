use std::time::Duration;

use crate::duration;
use crate::probe::parse_response;
use crate::procstat::{MachineTicks, parse_peak_resident, parse_process_ticks, parse_status_kib};
use crate::report::{median, percentile};

#[test]
fn durations_take_every_unit_and_refuse_the_rest() {
    assert_eq!(duration::parse("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(duration::parse("1ms"), Ok(Duration::from_millis(1)));
    assert_eq!(duration::parse(" 10s "), Ok(Duration::from_secs(10)));
    assert_eq!(duration::parse("2m"), Ok(Duration::from_secs(120)));
    for bad in [
        "",
        "10",
        "ms",
        "1.5s",
        "-1s",
        "10h",
        "99999999999999999999s",
    ] {
        assert!(duration::parse(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn percentile_is_nearest_rank() {
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&v, 0.5), Some(50));
    assert_eq!(percentile(&v, 0.99), Some(99));
    assert_eq!(percentile(&v, 1.0), Some(100));
    assert_eq!(percentile(&v, 0.0), Some(1));
    assert_eq!(percentile(&[7], 0.99), Some(7));
    assert_eq!(percentile(&[], 0.5), None);
}

#[test]
fn process_ticks_count_fields_after_the_last_paren() {
    // A command name with a space and a ')' must not shift the fields.
    let stat = "4242 (geecache ) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                731 269 0 0 20 0 3 0 12345 1000000 500 18446744073709551615";
    assert_eq!(parse_process_ticks(stat), Some(731 + 269));
    assert_eq!(parse_process_ticks("4242 (short) S 1 2"), None);
    assert_eq!(parse_process_ticks("no parens at all"), None);
}

#[test]
fn machine_ticks_add_busy_columns_and_leave_guest_out() {
    let text = "cpu  100 5 50 1000 20 3 2 1 40 0\ncpu0 1 2 3 4\n";
    let t = MachineTicks::parse(text).expect("parses");
    assert_eq!(t.busy, 100 + 5 + 50 + 3 + 2 + 1);
    assert_eq!(t.total, t.busy + 1000 + 20);
    let later = MachineTicks {
        busy: t.busy + 7,
        total: t.total + 10,
    };
    assert_eq!(later.since(t), MachineTicks { busy: 7, total: 10 });
    assert_eq!(MachineTicks::parse("intr 1 2 3\n"), None);
}

#[test]
fn responses_split_into_status_and_body() {
    let r = parse_response(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\nnope\n")
        .expect("parses");
    assert_eq!(r.status, 503);
    assert_eq!(r.body, b"nope\n");
    assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), None);
    assert_eq!(parse_response(b"garbage\r\n\r\n"), None);
}

#[test]
fn peak_resident_memory_is_read_from_the_vmhwm_line() {
    let status =
        "Name:\tgeecache\nVmPeak:\t  900000 kB\nVmHWM:\t   50096 kB\nVmRSS:\t   48000 kB\n";
    assert_eq!(parse_peak_resident(status), Some(50_096 * 1024));
    assert_eq!(parse_peak_resident("Name:\tx\nVmRSS:\t 1 kB\n"), None);
    assert_eq!(parse_peak_resident("VmHWM:\t lots kB\n"), None);
    assert_eq!(parse_peak_resident("VmHWM:\t 12 MB\n"), None);
}

#[test]
fn median_takes_the_middle_value_or_the_mean_of_the_middle_two() {
    assert_eq!(median(&mut [2.3, 1.9, 2.1]), Some(2.1));
    assert_eq!(median(&mut [2.5, 1.5, 2.0, 1.0]), Some(1.75));
    assert_eq!(median(&mut [7.0]), Some(7.0));
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [1.0, f64::NAN]), None);
}

#[test]
fn only_established_connections_of_the_process_to_the_given_ports_count() {
    use std::collections::HashSet;

    use crate::sockets::{count_established, socket_inode};

    assert_eq!(socket_inode("socket:[4242]"), Some(4242));
    assert_eq!(socket_inode("pipe:[4242]"), None);
    assert_eq!(socket_inode("/dev/null"), None);
    // Port 0x1F41 = 8001, 0x1F42 = 8002; 0x0A = LISTEN, 0x06 = TIME_WAIT.
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 100 1 0 100 0 0 10 0
   1: 0100007F:9C40 0100007F:1F42 01 00000000:00000000 00:00000000 00000000  1000        0 101 1 0 20 4 30 10 -1
   2: 0100007F:9C41 0100007F:1F42 01 00000000:00000000 00:00000000 00000000  1000        0 102 1 0 20 4 30 10 -1
   3: 0100007F:9C42 0100007F:1F42 06 00000000:00000000 00:00000000 00000000  1000        0 103 1 0 20 4 30 10 -1
   4: 0100007F:9C43 0100007F:1F42 01 00000000:00000000 00:00000000 00000000  1000        0 999 1 0 20 4 30 10 -1
   5: 0100007F:1F41 0100007F:9C44 01 00000000:00000000 00:00000000 00000000  1000        0 104 1 0 20 4 30 10 -1
   6: 0100007F:9C45 0100007F:1F43 01 00000000:00000000 00:00000000 00000000  1000        0 105 1 0 20 4 30 10 -1
";
    let ours: HashSet<u64> = [100, 101, 102, 103, 104, 105].into_iter().collect();
    // Rows 1 and 2: established, ours, to 8002. Row 3 is closing, row 4 another process's,
    // row 5 a connection a client made to us, row 6 to a port not asked about.
    assert_eq!(count_established(table, &ours, &[8002]), 2);
    assert_eq!(count_established(table, &ours, &[8002, 8003]), 3);
    assert_eq!(count_established(table, &ours, &[]), 0);
    assert_eq!(count_established("", &ours, &[8002]), 0);
}

#[test]
fn resident_memory_is_read_from_its_own_line() {
    let status = "Name:\tgeecache\nVmHWM:\t   50096 kB\nVmRSS:\t   31000 kB\n";
    assert_eq!(parse_status_kib(status, "VmRSS:"), Some(31_000 * 1024));
    assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    // This process: resident, and holding at least its standard streams' descriptors.
    let me = std::process::id();
    assert!(crate::procstat::resident_bytes(me).is_ok_and(|b| b > 0));
    assert!(crate::procstat::open_descriptors(me).is_ok_and(|n| n >= 3));
}
