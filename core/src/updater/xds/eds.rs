//! EDS: Envoy's `ClusterLoadAssignment` resources as peers.
//!
//! The mapping (documented for users in the [updater's docs](super)):
//!
//! * peer id: the endpoint's socket address and port, `host:port` (`[v6]:port` for IPv6);
//! * zone: the locality as `region/zone/sub_zone`, trailing empty parts left out
//!   (`us-east-1/us-east-1a`, or `us-east-1` with a region only); no zone when all three
//!   are empty;
//! * priority: the locality's `priority`;
//! * weight: the endpoint's `load_balancing_weight`, else its locality's, else 1;
//! * health: `HEALTHY` and `UNKNOWN` are offered; `DEGRADED` only when no endpoint of the
//!   subscribed clusters is healthy (Envoy uses degraded hosts only then);
//!   `UNHEALTHY`, `DRAINING`, `TIMEOUT` (and values this build does not know) are left
//!   out of the list.
//!
//! A resource that does not validate (not a `ClusterLoadAssignment`, an endpoint without a
//! socket address, a named port, port 0 or above 65535, a weight of 0, a zone over the
//! list's limit, a cluster twice in one response) rejects the whole response.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv6Addr;

use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address::PortSpecifier, HealthStatus, Locality,
};
use envoy_types::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use prost::Message;

use crate::updater::file::check_host_port;
use crate::PeerSpec;

/// The type URL of EDS resources.
pub(crate) const EDS_TYPE_URL: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// Whether an endpoint may be offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usable {
    /// `HEALTHY` or `UNKNOWN`.
    Yes,
    /// `DEGRADED`: offered only when nothing is healthy.
    Degraded,
    /// `UNHEALTHY`, `DRAINING`, `TIMEOUT` or unknown: never offered.
    No,
}

/// One endpoint of a cluster, as the updater keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) spec: PeerSpec,
    pub(crate) usable: Usable,
}

/// The endpoints of each subscribed cluster, by cluster name.
pub(crate) type Assignments = BTreeMap<String, Vec<Endpoint>>;

/// The zone string of a locality (see the module docs).
pub(crate) fn zone_of(locality: &Locality) -> Option<String> {
    let parts = [
        locality.region.as_str(),
        locality.zone.as_str(),
        locality.sub_zone.as_str(),
    ];
    let used = parts.iter().rposition(|p| !p.is_empty())?;
    Some(parts[..=used].join("/"))
}

/// The clusters a response assigns (subscribed ones only; others are ignored), or why the
/// response is rejected.
pub(crate) fn decode(
    response: &DiscoveryResponse,
    subscribed: &BTreeSet<String>,
) -> Result<Assignments, String> {
    let mut out = Assignments::new();
    for (i, any) in response.resources.iter().enumerate() {
        if any.type_url != EDS_TYPE_URL {
            return Err(format!(
                "resource {i} is a {:?}, not a ClusterLoadAssignment",
                any.type_url
            ));
        }
        let cla = ClusterLoadAssignment::decode(any.value.as_slice())
            .map_err(|e| format!("resource {i}: not a ClusterLoadAssignment: {e}"))?;
        if !subscribed.contains(&cla.cluster_name) {
            continue;
        }
        let name = cla.cluster_name.clone();
        let endpoints = endpoints_of(&cla).map_err(|e| format!("cluster {name:?}: {e}"))?;
        if out.insert(name.clone(), endpoints).is_some() {
            return Err(format!("cluster {name:?} appears twice in one response"));
        }
    }
    Ok(out)
}

fn endpoints_of(cla: &ClusterLoadAssignment) -> Result<Vec<Endpoint>, String> {
    let mut out = Vec::new();
    for (l, group) in cla.endpoints.iter().enumerate() {
        let zone = group.locality.as_ref().and_then(zone_of);
        let at = match &zone {
            Some(z) => format!("locality {l} ({z})"),
            None => format!("locality {l}"),
        };
        if let Some(z) = &zone {
            crate::list::routing::validate_zone(z).map_err(|e| format!("{at}: {e}"))?;
        }
        let locality_weight = match group.load_balancing_weight.as_ref().map(|w| w.value) {
            Some(0) => return Err(format!("{at}: load_balancing_weight 0 (want >= 1)")),
            w => w,
        };
        for (e, lb) in group.lb_endpoints.iter().enumerate() {
            let at = format!("{at}, endpoint {e}");
            let endpoint = match &lb.host_identifier {
                Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => ep,
                _ => {
                    return Err(format!(
                        "{at}: no endpoint (named endpoints are not supported)"
                    ))
                }
            };
            let socket = match endpoint.address.as_ref().and_then(|a| a.address.as_ref()) {
                Some(address::Address::SocketAddress(s)) => s,
                Some(_) => return Err(format!("{at}: not a socket address (pipe or internal)")),
                None => return Err(format!("{at}: no address")),
            };
            let port = match socket.port_specifier {
                Some(PortSpecifier::PortValue(p)) if (1..=65535).contains(&p) => p,
                Some(PortSpecifier::PortValue(p)) => {
                    return Err(format!("{at}: port {p} out of range (want 1..=65535)"))
                }
                Some(PortSpecifier::NamedPort(ref n)) => {
                    return Err(format!("{at}: named port {n:?} is not supported"))
                }
                None => return Err(format!("{at}: no port")),
            };
            let host = socket.address.as_str();
            let id = if host.parse::<Ipv6Addr>().is_ok() {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            check_host_port(&id).map_err(|why| format!("{at}: bad address {id:?}: {why}"))?;
            let weight = match lb.load_balancing_weight.as_ref().map(|w| w.value) {
                Some(0) => return Err(format!("{at}: load_balancing_weight 0 (want >= 1)")),
                Some(w) => w,
                None => locality_weight.unwrap_or(1),
            };
            let usable = match HealthStatus::try_from(lb.health_status) {
                Ok(HealthStatus::Healthy | HealthStatus::Unknown) => Usable::Yes,
                Ok(HealthStatus::Degraded) => Usable::Degraded,
                _ => Usable::No,
            };
            let mut spec = PeerSpec::weighted(id, weight).with_priority(group.priority);
            if let Some(z) = &zone {
                spec = spec.with_zone(z.as_str());
            }
            out.push(Endpoint { spec, usable });
        }
    }
    Ok(out)
}

/// The peers the clusters offer together (see the module docs): healthy ones, or the
/// degraded ones when none is healthy; an address in several clusters (or localities)
/// once, as it first appears (clusters by name).
pub(crate) fn peers_of(assignments: &Assignments) -> Vec<PeerSpec> {
    let all = || assignments.values().flatten();
    let wanted = if all().any(|e| e.usable == Usable::Yes) {
        Usable::Yes
    } else {
        Usable::Degraded
    };
    let mut seen = HashSet::new();
    all()
        .filter(|e| e.usable == wanted && seen.insert(e.spec.id.clone()))
        .map(|e| e.spec.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(r: &str, z: &str, s: &str) -> Locality {
        Locality {
            region: r.into(),
            zone: z.into(),
            sub_zone: s.into(),
        }
    }

    #[test]
    fn zones_join_region_zone_sub_zone() {
        assert_eq!(zone_of(&loc("", "", "")), None);
        assert_eq!(zone_of(&loc("r", "", "")).as_deref(), Some("r"));
        assert_eq!(zone_of(&loc("r", "z", "")).as_deref(), Some("r/z"));
        assert_eq!(zone_of(&loc("r", "z", "s")).as_deref(), Some("r/z/s"));
        assert_eq!(zone_of(&loc("", "z", "")).as_deref(), Some("/z"));
    }

    use envoy_types::pb::envoy::config::core::v3::{Address, Pipe, SocketAddress};
    use envoy_types::pb::envoy::config::endpoint::v3::{
        Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
    };
    use envoy_types::pb::google::protobuf::{Any, UInt32Value};

    fn lb(
        addr: &str,
        port: Option<PortSpecifier>,
        weight: Option<u32>,
        health: HealthStatus,
    ) -> LbEndpoint {
        LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: addr.into(),
                        port_specifier: port,
                        ..SocketAddress::default()
                    })),
                }),
                ..EnvoyEndpoint::default()
            })),
            load_balancing_weight: weight.map(|value| UInt32Value { value }),
            health_status: health as i32,
            ..LbEndpoint::default()
        }
    }

    fn port(p: u32) -> Option<PortSpecifier> {
        Some(PortSpecifier::PortValue(p))
    }

    fn cla(name: &str, locality_weight: Option<u32>, endpoints: Vec<LbEndpoint>) -> Any {
        let cla = ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: vec![LocalityLbEndpoints {
                locality: Some(loc("r", "z", "")),
                lb_endpoints: endpoints,
                load_balancing_weight: locality_weight.map(|value| UInt32Value { value }),
                priority: 2,
                ..LocalityLbEndpoints::default()
            }],
            ..ClusterLoadAssignment::default()
        };
        Any {
            type_url: EDS_TYPE_URL.into(),
            value: cla.encode_to_vec(),
        }
    }

    fn decode_all(resources: Vec<Any>) -> Result<Assignments, String> {
        let response = DiscoveryResponse {
            resources,
            type_url: EDS_TYPE_URL.into(),
            ..DiscoveryResponse::default()
        };
        decode(&response, &["a".to_owned(), "b".to_owned()].into())
    }

    #[test]
    fn weights_fall_back_from_endpoint_to_locality_to_one() {
        let got = decode_all(vec![
            cla(
                "a",
                Some(7),
                vec![
                    lb("10.0.0.1", port(80), Some(3), HealthStatus::Healthy),
                    lb("10.0.0.2", port(80), None, HealthStatus::Unknown),
                ],
            ),
            cla(
                "b",
                None,
                vec![lb("2001:db8::1", port(443), None, HealthStatus::Healthy)],
            ),
            cla(
                "other",
                None,
                vec![lb("10.9.9.9", port(0), None, HealthStatus::Healthy)],
            ),
        ])
        .unwrap();
        let peers = peers_of(&got);
        let want = |id: &str, w: u32| PeerSpec::weighted(id, w).with_priority(2).with_zone("r/z");
        assert_eq!(
            peers,
            vec![
                want("10.0.0.1:80", 3),
                want("10.0.0.2:80", 7),
                want("[2001:db8::1]:443", 1)
            ]
        );
    }

    #[test]
    fn health_decides_what_is_offered() {
        let got = decode_all(vec![cla(
            "a",
            None,
            vec![
                lb("10.0.0.1", port(80), None, HealthStatus::Unhealthy),
                lb("10.0.0.2", port(80), None, HealthStatus::Draining),
                lb("10.0.0.3", port(80), None, HealthStatus::Timeout),
                lb("10.0.0.4", port(80), None, HealthStatus::Degraded),
            ],
        )])
        .unwrap();
        let ids: Vec<String> = peers_of(&got).into_iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            ["10.0.0.4:80"],
            "degraded only when nothing is healthy"
        );
        let got = decode_all(vec![
            cla(
                "a",
                None,
                vec![lb("10.0.0.4", port(80), None, HealthStatus::Degraded)],
            ),
            cla(
                "b",
                None,
                vec![lb("10.0.0.5", port(80), None, HealthStatus::Healthy)],
            ),
        ])
        .unwrap();
        let ids: Vec<String> = peers_of(&got).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["10.0.0.5:80"]);
    }

    #[test]
    fn an_address_in_two_clusters_is_one_peer() {
        let got = decode_all(vec![
            cla(
                "b",
                None,
                vec![lb("10.0.0.1", port(80), Some(9), HealthStatus::Healthy)],
            ),
            cla(
                "a",
                None,
                vec![lb("10.0.0.1", port(80), Some(2), HealthStatus::Healthy)],
            ),
        ])
        .unwrap();
        let peers = peers_of(&got);
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].weight, 2, "clusters in name order: a first");
    }

    #[test]
    fn invalid_resources_reject_the_response() {
        let no_address = LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(
                EnvoyEndpoint::default(),
            )),
            ..LbEndpoint::default()
        };
        let pipe = LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                address: Some(Address {
                    address: Some(address::Address::Pipe(Pipe::default())),
                }),
                ..EnvoyEndpoint::default()
            })),
            ..LbEndpoint::default()
        };
        let named = Some(PortSpecifier::NamedPort("http".into()));
        let cases: Vec<(Vec<Any>, &str)> = vec![
            (
                vec![cla(
                    "a",
                    None,
                    vec![lb("10.0.0.1", port(0), None, HealthStatus::Healthy)],
                )],
                "port 0",
            ),
            (
                vec![cla(
                    "a",
                    None,
                    vec![lb("10.0.0.1", port(65536), None, HealthStatus::Healthy)],
                )],
                "port 65536",
            ),
            (
                vec![cla(
                    "a",
                    None,
                    vec![lb("10.0.0.1", None, None, HealthStatus::Healthy)],
                )],
                "no port",
            ),
            (
                vec![cla(
                    "a",
                    None,
                    vec![lb("10.0.0.1", named, None, HealthStatus::Healthy)],
                )],
                "named port",
            ),
            (
                vec![cla(
                    "a",
                    None,
                    vec![lb("", port(80), None, HealthStatus::Healthy)],
                )],
                "bad address",
            ),
            (
                vec![cla(
                    "a",
                    None,
                    vec![lb("10.0.0.1", port(80), Some(0), HealthStatus::Healthy)],
                )],
                "weight 0",
            ),
            (
                vec![cla(
                    "a",
                    Some(0),
                    vec![lb("10.0.0.1", port(80), None, HealthStatus::Healthy)],
                )],
                "weight 0",
            ),
            (vec![cla("a", None, vec![no_address])], "no address"),
            (vec![cla("a", None, vec![pipe])], "not a socket address"),
            (
                vec![cla("a", None, vec![LbEndpoint::default()])],
                "no endpoint",
            ),
            (
                vec![cla("a", None, vec![]), cla("a", None, vec![])],
                "twice",
            ),
            (
                vec![Any {
                    type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
                    value: vec![],
                }],
                "not a ClusterLoadAssignment",
            ),
            (
                vec![Any {
                    type_url: EDS_TYPE_URL.into(),
                    value: vec![0xff, 0xff],
                }],
                "not a ClusterLoadAssignment",
            ),
        ];
        for (resources, why) in cases {
            let e = decode_all(resources).unwrap_err();
            assert!(e.contains(why), "{e:?} should say {why:?}");
        }
    }
}
