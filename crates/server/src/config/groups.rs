//! The group-spec language: `--group NAME=SOURCE[,option=value]...` and `[groups.NAME]` tables.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, Field};
use super::file::FileGroup;
use super::layers::{Layers, ids};
use super::units::{DURATION_FORMS, SIZE_FORMS, parse_duration, parse_size};
use super::values::{is_unreserved, positive_size};
use super::{GroupConfig, HotConfig, Qps, SourceSpec, defaults};
use geecache_group::{Charge, Policy};

/// A group as given on the command line or in the file, before its fields are checked.
pub(super) struct RawGroup {
    pub(super) name: String,
    pub(super) source: Option<String>,
    pub(super) cache_bytes: Option<String>,
    pub(super) ttl: Option<String>,
    pub(super) origin_timeout: Option<String>,
    pub(super) max_value_bytes: Option<String>,
    pub(super) policy: Option<String>,
    pub(super) charge: Option<String>,
    pub(super) negative_ttl: Option<String>,
    pub(super) hot: Option<String>,
    pub(super) hot_qps: Option<String>,
    pub(super) peer_batch_window: Option<String>,
    /// How to name this group's fields in an error: `(field, value shown)` per option.
    origin: GroupOrigin,
}

enum GroupOrigin {
    /// From `--group`/`GEECACHE_GROUPS`: the whole spec is what the operator typed.
    Cli { field: Field, spec: String },
    /// From `[groups.NAME]` in the file.
    File { path: String },
}

impl RawGroup {
    /// The field and value to show when option `key` (with value `value`) is wrong.
    fn field(&self, key: &str, value: &str) -> (Field, String) {
        match &self.origin {
            GroupOrigin::Cli { field, spec } => (field.clone(), spec.clone()),
            GroupOrigin::File { path } => (
                Field::File {
                    key: format!("groups.{}.{key}", self.name),
                    path: path.clone(),
                },
                value.to_owned(),
            ),
        }
    }
}

/// Options a `--group` spec may carry after `NAME=SOURCE`.
const GROUP_OPTIONS: [&str; 10] = [
    "cache",
    "ttl",
    "origin_timeout",
    "max_value_bytes",
    "policy",
    "charge",
    "negative_ttl",
    "hot",
    "hot_qps",
    "peer_batch_window",
];

/// Splits `NAME=SOURCE[,cache=SIZE][,ttl=DURATION]...`.
///
/// Options are peeled off the end only while they look like `,known_option=...`, so a comma
/// inside a source (a path or a URL with a comma) stays part of the source.
pub(super) fn parse_group_spec(spec: &str, field: &Field) -> Result<RawGroup, ConfigError> {
    const ALLOWED: &str = "expected NAME=SOURCE[,cache=SIZE][,ttl=DURATION][,origin_timeout=DURATION][,max_value_bytes=SIZE][,policy=lru|s3fifo][,charge=payload|memory][,negative_ttl=DURATION][,hot=rate|random][,hot_qps=NUMBER][,peer_batch_window=DURATION] \
                           where SOURCE is demo, dir:PATH or http:URL, e.g. scores=demo,cache=64MiB";
    let Some((name, rest)) = spec.split_once('=') else {
        return Err(ConfigError::invalid(
            field,
            spec,
            "there is no '='",
            ALLOWED,
        ));
    };
    let mut rest = rest;
    let mut options: BTreeMap<&str, &str> = BTreeMap::new();
    while let Some((head, tail)) = rest.rsplit_once(',') {
        let Some((key, value)) = tail.split_once('=') else {
            break;
        };
        if !GROUP_OPTIONS.contains(&key) {
            break;
        }
        if options.insert(key, value).is_some() {
            return Err(ConfigError::invalid(
                field,
                spec,
                format!("option {key} is given twice"),
                ALLOWED,
            ));
        }
        rest = head;
    }
    let get = |k: &str| options.get(k).map(|v| (*v).to_owned());
    Ok(RawGroup {
        name: name.trim().to_owned(),
        source: Some(rest.to_owned()),
        cache_bytes: get("cache"),
        ttl: get("ttl"),
        origin_timeout: get("origin_timeout"),
        max_value_bytes: get("max_value_bytes"),
        policy: get("policy"),
        charge: get("charge"),
        negative_ttl: get("negative_ttl"),
        hot: get("hot"),
        hot_qps: get("hot_qps"),
        peer_batch_window: get("peer_batch_window"),
        origin: GroupOrigin::Cli {
            field: field.clone(),
            spec: spec.to_owned(),
        },
    })
}

pub(super) fn resolve_groups(layers: &Layers<'_>) -> Result<Vec<GroupConfig>, ConfigError> {
    let mut raw: BTreeMap<String, RawGroup> = BTreeMap::new();
    for (name, g) in &layers.file.groups {
        let FileGroup {
            source,
            cache_bytes,
            ttl,
            origin_timeout,
            max_value_bytes,
            policy,
            charge,
            negative_ttl,
            hot,
            hot_qps,
            peer_batch_window,
        } = g;
        raw.insert(
            name.clone(),
            RawGroup {
                name: name.clone(),
                source: source.clone(),
                cache_bytes: cache_bytes.as_ref().map(|s| s.0.clone()),
                ttl: ttl.clone(),
                origin_timeout: origin_timeout.clone(),
                max_value_bytes: max_value_bytes.as_ref().map(|s| s.0.clone()),
                policy: policy.clone(),
                charge: charge.clone(),
                negative_ttl: negative_ttl.clone(),
                hot: hot.clone(),
                hot_qps: hot_qps.as_ref().map(|s| s.0.clone()),
                peer_batch_window: peer_batch_window.clone(),
                origin: GroupOrigin::File {
                    path: layers.file_path.clone(),
                },
            },
        );
    }
    // Command-line groups replace file groups of the same name whole: merging a flag's
    // source with the file's TTL would make a group nobody wrote down.
    let cli_field = layers.cli_field(ids::GROUPS);
    let mut seen_on_cli: Vec<String> = Vec::new();
    for spec in layers.args.groups.iter().filter(|s| !s.trim().is_empty()) {
        let group = parse_group_spec(spec, &cli_field)?;
        if seen_on_cli.contains(&group.name) {
            return Err(ConfigError::invalid(
                &cli_field,
                spec,
                format!("group {:?} is given twice", group.name),
                "give each group once",
            ));
        }
        seen_on_cli.push(group.name.clone());
        raw.insert(group.name.clone(), group);
    }
    if raw.is_empty() {
        return Err(ConfigError::Missing(
            "no groups configured: add --group NAME=SOURCE (e.g. --group scores=demo) or a \
             [groups.NAME] table with a source to the config file"
                .to_owned(),
        ));
    }
    raw.into_values().map(|g| checked_group(&g)).collect()
}

fn checked_group(g: &RawGroup) -> Result<GroupConfig, ConfigError> {
    let (name_field, name_value) = g.field("name", &g.name);
    if g.name.is_empty() || g.name.len() > 64 || !g.name.bytes().all(is_unreserved) {
        return Err(ConfigError::invalid(
            &name_field,
            &name_value,
            format!(
                "group name {:?} is empty, too long or has a character that would need escaping in a URL",
                g.name
            ),
            "expected 1 to 64 characters from A-Z a-z 0-9 . _ ~ -, e.g. scores",
        ));
    }
    let Some(source_text) = &g.source else {
        let (field, _) = g.field("source", "");
        return Err(ConfigError::Missing(format!(
            "{field} is missing: every group needs a source: demo, dir:PATH or http:URL"
        )));
    };
    let (field, value) = g.field("source", source_text);
    let source = checked_source(source_text, &field, &value)?;

    let cache_bytes = match &g.cache_bytes {
        None => defaults::CACHE_BYTES,
        Some(text) => {
            let (field, value) = g.field("cache_bytes", text);
            parse_size(text).ok_or_else(|| {
                ConfigError::invalid(
                    &field,
                    &value,
                    format!("cache size {text:?} is not a size"),
                    format!("expected {SIZE_FORMS}; 0 means unbounded"),
                )
            })?
        }
    };
    let ttl = match &g.ttl {
        None => None,
        Some(text) => {
            let (field, value) = g.field("ttl", text);
            Some(group_duration(text, &field, &value, "ttl")?)
        }
    };
    let origin_timeout = match &g.origin_timeout {
        None => defaults::ORIGIN_TIMEOUT,
        Some(text) => {
            let (field, value) = g.field("origin_timeout", text);
            if source == SourceSpec::Demo {
                return Err(ConfigError::invalid(
                    &field,
                    &value,
                    "origin_timeout applies to dir: and http: sources only",
                    "remove it, or use a dir:PATH or http:URL source",
                ));
            }
            group_duration(text, &field, &value, "origin_timeout")?
        }
    };
    let max_value_bytes = match &g.max_value_bytes {
        None => defaults::MAX_VALUE_BYTES,
        Some(text) => {
            let (field, value) = g.field("max_value_bytes", text);
            if source == SourceSpec::Demo {
                return Err(ConfigError::invalid(
                    &field,
                    &value,
                    "max_value_bytes applies to dir: and http: sources only",
                    "remove it, or use a dir:PATH or http:URL source",
                ));
            }
            match &g.origin {
                // On the command line the whole spec is the value; say which option.
                GroupOrigin::Cli { .. } => positive_size(text, &field).map_err(|_| {
                    ConfigError::invalid(
                        &field,
                        &value,
                        format!("max_value_bytes {text:?} is not a size above zero"),
                        format!("expected {SIZE_FORMS}"),
                    )
                })?,
                GroupOrigin::File { .. } => positive_size(text, &field)?,
            }
        }
    };
    let policy = match g.policy.as_deref().map(str::trim) {
        // Absent: the library's default, so the binary cannot drift from it. Case is not
        // significant: `LRU` is how the policy is usually written.
        None => geecache_group::GroupBuilder::DEFAULT_POLICY,
        Some(text) if text.eq_ignore_ascii_case("lru") => Policy::Lru,
        Some(text) if text.eq_ignore_ascii_case("s3fifo") => Policy::S3Fifo,
        Some(text) => {
            let (field, value) = g.field("policy", text);
            return Err(ConfigError::invalid(
                &field,
                &value,
                format!("policy {text:?} is not an eviction policy"),
                "expected s3fifo (scan-resistant, the default) or lru (least recently used)",
            ));
        }
    };
    let charge = match g.charge.as_deref().map(str::trim) {
        // Absent: the library's default, as for the policy.
        None => Charge::default(),
        Some(text) if text.eq_ignore_ascii_case("payload") => Charge::Payload,
        Some(text) if text.eq_ignore_ascii_case("memory") => Charge::Memory,
        Some(text) => {
            let (field, value) = g.field("charge", text);
            return Err(ConfigError::invalid(
                &field,
                &value,
                format!("charge {text:?} is not what a cache budget can count"),
                "expected payload (key and value bytes, the default) or memory (those and \
                 each entry's bookkeeping)",
            ));
        }
    };
    let negative_ttl = match &g.negative_ttl {
        None => None,
        Some(text) => {
            let (field, value) = g.field("negative_ttl", text);
            Some(group_duration(text, &field, &value, "negative_ttl")?)
        }
    };
    let hot = checked_hot(g)?;
    let peer_batch_window = match &g.peer_batch_window {
        None => Duration::ZERO,
        Some(text) => {
            let (field, value) = g.field("peer_batch_window", text);
            match parse_duration(text) {
                Some(window) if window <= MAX_PEER_BATCH_WINDOW => window,
                _ => {
                    return Err(ConfigError::invalid(
                        &field,
                        &value,
                        format!("peer_batch_window {text:?} is not a duration of 0 to 10ms"),
                        "expected a whole number of milliseconds up to 10, e.g. \"1ms\"; 0ms \
                         (the default) sends each peer fetch alone",
                    ));
                }
            }
        }
    };
    Ok(GroupConfig {
        name: g.name.clone(),
        source,
        cache_bytes,
        ttl,
        origin_timeout,
        max_value_bytes,
        policy,
        charge,
        negative_ttl,
        hot,
        peer_batch_window,
    })
}

/// The longest peer batch window the library takes: past it, every coalesced fetch waits
/// longer than the round trip it saves.
const MAX_PEER_BATCH_WINDOW: Duration = Duration::from_millis(10);

/// `hot=rate|random` and `hot_qps=NUMBER`: a threshold implies `rate`, and contradicts
/// `random`.
fn checked_hot(g: &RawGroup) -> Result<HotConfig, ConfigError> {
    let qps = match g.hot_qps.as_deref().map(str::trim) {
        None => None,
        Some(text) => {
            let (field, value) = g.field("hot_qps", text);
            match text.parse::<f64>() {
                Ok(qps) if qps.is_finite() && qps >= 0.0 => Some(Qps(qps)),
                _ => {
                    return Err(ConfigError::invalid(
                        &field,
                        &value,
                        format!("hot_qps {text:?} is not a number of requests per second"),
                        "expected a number zero or above, e.g. 0.05 (a request every 20 s)",
                    ));
                }
            }
        }
    };
    match g.hot.as_deref().map(str::trim) {
        None => Ok(HotConfig::Rate(qps)),
        Some(text) if text.eq_ignore_ascii_case("rate") => Ok(HotConfig::Rate(qps)),
        Some(text) if text.eq_ignore_ascii_case("random") => match qps {
            None => Ok(HotConfig::Random),
            Some(_) => {
                let (field, value) = g.field("hot", text);
                Err(ConfigError::invalid(
                    &field,
                    &value,
                    "hot=random admits at random, so a hot_qps threshold means nothing with it",
                    "remove hot_qps, or use hot=rate",
                ))
            }
        },
        Some(text) => {
            let (field, value) = g.field("hot", text);
            Err(ConfigError::invalid(
                &field,
                &value,
                format!("hot {text:?} is not a hot-cache admission rule"),
                "expected rate (by the owner's measured request rate, the default) or random \
                 (one in ten, as groupcache)",
            ))
        }
    }
}

fn group_duration(
    text: &str,
    field: &Field,
    value: &str,
    option: &str,
) -> Result<Duration, ConfigError> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(ConfigError::invalid(
            field,
            value,
            format!("{option} must be greater than zero"),
            format!("expected {DURATION_FORMS}; leave ttl out for no expiry"),
        )),
        None => Err(ConfigError::invalid(
            field,
            value,
            format!("{option} {text:?} is not a duration"),
            format!("expected {DURATION_FORMS}"),
        )),
    }
}

/// The option a spec's source ends with, when the source is refused and ends in
/// `,word=...`: `scores=demo,cach=64MiB` is far likelier a misspelt option than a source
/// named `demo,cach=64MiB`, and saying "unknown source" would send the reader to the wrong
/// half of the spec. (A source that is accepted keeps its commas: a path may have them.)
fn unknown_option(source: &str) -> Option<&str> {
    let (_, tail) = source.rsplit_once(',')?;
    let (key, _) = tail.split_once('=')?;
    let word = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    word.then_some(key)
}

fn unknown_option_error(key: &str, field: &Field, value: &str) -> ConfigError {
    ConfigError::invalid(
        field,
        value,
        format!("unknown option {key:?}"),
        format!("expected one of {}", GROUP_OPTIONS.join(", ")),
    )
}

fn checked_source(text: &str, field: &Field, value: &str) -> Result<SourceSpec, ConfigError> {
    let checked = checked_source_as_given(text, field, value);
    match (&checked, unknown_option(text.trim())) {
        (Err(_), Some(key)) => Err(unknown_option_error(key, field, value)),
        _ => checked,
    }
}

fn checked_source_as_given(
    text: &str,
    field: &Field,
    value: &str,
) -> Result<SourceSpec, ConfigError> {
    const ALLOWED: &str = "expected demo, dir:PATH (a directory) or http:URL (an http:// origin), \
                           e.g. dir:/srv/files or http:http://127.0.0.1:9000/objects/";
    let text = text.trim();
    if text == "demo" {
        return Ok(SourceSpec::Demo);
    }
    if let Some(path) = text.strip_prefix("dir:") {
        if path.is_empty() {
            return Err(ConfigError::invalid(
                field,
                value,
                "dir: needs a path",
                ALLOWED,
            ));
        }
        let path = Path::new(path);
        return match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(SourceSpec::Dir(path.to_path_buf())),
            Ok(_) => Err(ConfigError::invalid(
                field,
                value,
                format!("{} is not a directory", path.display()),
                ALLOWED,
            )),
            Err(e) => Err(ConfigError::invalid(
                field,
                value,
                format!("cannot use directory {}: {e}", path.display()),
                ALLOWED,
            )),
        };
    }
    // `http:URL` is the documented form; the bare URL is accepted too, since that is what
    // people paste.
    let url = text
        .strip_prefix("http:")
        .filter(|rest| rest.starts_with("http"))
        .unwrap_or(text);
    if url.starts_with("https://") {
        return Err(ConfigError::invalid(
            field,
            value,
            "https origins are not supported (this build has no TLS client)",
            "expected an http:// origin, e.g. a local TLS-terminating proxy in front of the store",
        ));
    }
    if url.starts_with("http://") {
        return checked_origin_url(url, field, value).map(SourceSpec::Http);
    }
    Err(ConfigError::invalid(
        field,
        value,
        "unknown source",
        ALLOWED,
    ))
}

/// Checks an origin URL and makes it ready for keys to be appended.
fn checked_origin_url(url: &str, field: &Field, value: &str) -> Result<String, ConfigError> {
    const ALLOWED: &str = "expected http://HOST[:PORT][/PREFIX] (the key is appended, \
                           percent-encoded), e.g. http://127.0.0.1:9000/objects/";
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ConfigError::invalid(field, value, "the origin is not a URL", ALLOWED))?;
    match uri.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => {}
        _ => {
            return Err(ConfigError::invalid(
                field,
                value,
                "the origin URL needs a host and no user information",
                ALLOWED,
            ));
        }
    }
    if url.contains('#') {
        return Err(ConfigError::invalid(
            field,
            value,
            "the origin URL has a fragment",
            ALLOWED,
        ));
    }
    // "http://host:9000" has no path: the key must not be glued to the port.
    let after_scheme = &url["http://".len()..];
    let mut url = url.to_owned();
    if !after_scheme.contains('/') && !after_scheme.contains('?') {
        url.push('/');
    }
    Ok(url)
}
