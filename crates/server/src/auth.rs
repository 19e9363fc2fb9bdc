//! The bearer-token check of the routes this binary adds (`/metrics`, `/readyz`) and of the
//! key guard, the same check the transport applies to its own routes.

use http::{HeaderMap, header};

/// Whether `headers` carry `Authorization: Bearer <token>`.
pub(crate) fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let Some(given) = value.as_bytes().strip_prefix(b"Bearer ") else {
        return false;
    };
    // Compare every byte, not up to the first mismatch, so the time taken does not tell an
    // attacker how much of a guess was right.
    let diff = given.len() == token.len()
        && given
            .iter()
            .zip(token.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    std::hint::black_box(diff)
}

/// Whether a route guarded by `token` (if any) admits `headers`.
pub(crate) fn admits(token: Option<&str>, headers: &HeaderMap) -> bool {
    token.is_none_or(|t| bearer_matches(headers, t))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        assert!(bearer_matches(&with_auth("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&with_auth("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&with_auth("Bearer s3cretX"), "s3cret"));
        assert!(!bearer_matches(&with_auth("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&with_auth("bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn an_unguarded_route_admits_everyone() {
        assert!(admits(None, &HeaderMap::new()));
        assert!(!admits(Some("t"), &HeaderMap::new()));
        assert!(admits(Some("t"), &with_auth("Bearer t")));
    }
}
