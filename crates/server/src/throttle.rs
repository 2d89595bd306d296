//! What stands between a login flood and the machine: the client address a login is counted
//! under (here), and the process-wide bound on concurrent password hashing (the application
//! core's `anxin_app::passwords`, re-exported).
//!
//! Throttling of repeated failures (per account and address, per address, per account) is the
//! domain's rule (`anxin_domain::auth::LoginPolicy`) over counts kept in the database.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The address a login attempt is counted under: the peer's IP address (IPv6 by its /64, which
/// one host usually holds whole), or `unknown` when the server was not told (in-process tests
/// that set none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl ClientAddr {
    /// The key of an IP address.
    pub fn of(ip: IpAddr) -> ClientAddr {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        ClientAddr(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| ClientAddr::of(a.ip()))
            .unwrap_or_else(|| ClientAddr("unknown".into())))
    }
}

pub use anxin_app::passwords::{
    auto_permits, configure, gate, HashGate, IN_FLIGHT_PER_PERMIT, MEMORY_PER_HASH,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_by_ip_and_ipv6_by_its_64() {
        let v4: IpAddr = "192.168.1.20".parse().unwrap();
        assert_eq!(ClientAddr::of(v4).0, "192.168.1.20");
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(ClientAddr::of(mapped).0, "10.0.0.7");
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ClientAddr::of(a), ClientAddr::of(b));
        assert_eq!(ClientAddr::of(a).0, "2001:db8:1:2::/64");
    }
}
