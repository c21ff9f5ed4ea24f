//! The interfaces of a container's network namespace as the addon hands
//! them to the sandbox (`boot --net-links JSON --net-fds N,…`): what the
//! sentry's stack needs to take each one over.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TakenLink {
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Addresses with their prefix lengths, as the namespace had them
    /// (they are removed there: the sandbox answers for them now).
    pub addrs: Vec<(IpAddr, u8)>,
    /// Default gateways through this link.
    pub gateways: Vec<IpAddr>,
}
