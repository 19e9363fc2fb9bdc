//! `geecache`: run a cache node (`serve`), watch a three-node cluster at work (`demo`), or
//! fetch values from a running node (`get`). The code is the `geecache_server` library's, so
//! that its parsers can be fuzzed from outside the binary.

fn main() -> std::process::ExitCode {
    geecache_server::run()
}
