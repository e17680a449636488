//! HTTP requests: counted by endpoint and status, timed by endpoint.
//!
//! The endpoint label is one of a fixed list ([`ENDPOINTS`]), so a client
//! requesting random paths cannot grow the number of series; statuses are
//! the few a server answers.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The endpoint labels: every path rapidbox serves, `console` for the web
/// console's, and `other` for the rest.
pub const ENDPOINTS: [&str; 13] = [
    "/router/receive",
    "/router/outbox",
    "/router/delivered",
    "/router/status",
    "/router/stats",
    "/router/alert",
    "/router/relaylog",
    "/cgi-bin/sendsms",
    "/metrics",
    "/health",
    "/ready",
    "console",
    "other",
];

/// The label of `path` (a trailing slash ignored, as the API does).
fn endpoint_index(path: &str, console: bool) -> usize {
    if console {
        return ENDPOINTS.len() - 2;
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    ENDPOINTS[..ENDPOINTS.len() - 2]
        .iter()
        .position(|e| *e == path)
        .unwrap_or(ENDPOINTS.len() - 1)
}

/// An HTTP status as a label value, written without allocating.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
struct Status(u16);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        write!(encoder, "{}", self.0)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: Status,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    endpoint: &'static str,
    outcome: &'static str,
}

/// The statuses nearly every answer has: their counters are looked up in
/// the family once per endpoint, not once per request.
const COMMON_STATUSES: [u16; 5] = [200, 202, 400, 403, 404];

/// The HTTP server's metrics.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    /// `requests`' counters of [`COMMON_STATUSES`], per endpoint, each
    /// taken from the family when first counted (so `/metrics` still shows
    /// only the series that happened), then counted without the family's
    /// lock and hashing.
    common: [[OnceLock<Counter>; COMMON_STATUSES.len()]; ENDPOINTS.len()],
    refused: Family<ReasonLabels, Counter>,
    auth_failures: Family<AuthLabels, Counter>,
    seconds: [Histogram; ENDPOINTS.len()],
}

/// One request being timed: [`HttpMetrics::start`], then
/// [`HttpTimer::finish`] with its status.
#[derive(Debug)]
pub struct HttpTimer {
    endpoint: usize,
    started: Instant,
}

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> HttpMetrics {
        let requests = Family::<RequestLabels, Counter>::default();
        // 1 ms to ~16 s: a cached read to a sendsms waiting on a slow disk.
        let histograms = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        let seconds = std::array::from_fn(|i| {
            histograms.get_or_create_owned(&EndpointLabels {
                endpoint: ENDPOINTS[i],
            })
        });
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its answer, by endpoint",
            histograms,
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_connections_refused",
            "HTTP connections closed unserved: per_address (the client's address held its \
             share) or full (every slot taken and the queue full)",
            refused.clone(),
        );
        let auth_failures = Family::<AuthLabels, Counter>::default();
        registry.register(
            "http_auth_failures",
            "Wrong credentials (outcome wrong) and requests refused because their address \
             failed too often (outcome throttled), by endpoint (sendsms, console, receive, \
             outbox, delivered, backup, alert, relaylog, metrics)",
            auth_failures.clone(),
        );
        HttpMetrics {
            requests,
            common: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            seconds,
            refused,
            auth_failures,
        }
    }

    /// Counts a connection closed unserved, for `reason` (`per_address`,
    /// `full`).
    pub fn connection_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts wrong credentials (`throttled`: false) or a request refused
    /// for too many of them (`throttled`: true) at `endpoint`.
    pub fn auth_failure(&self, endpoint: &'static str, throttled: bool) {
        let outcome = if throttled { "throttled" } else { "wrong" };
        self.auth_failures
            .get_or_create(&AuthLabels { endpoint, outcome })
            .inc();
    }

    /// Starts timing a request for `path` (`console`: a console path).
    pub fn start(&self, path: &str, console: bool) -> HttpTimer {
        HttpTimer {
            endpoint: endpoint_index(path, console),
            started: Instant::now(),
        }
    }

    /// Counts and times a request answered with `status`.
    pub fn finish(&self, timer: HttpTimer, status: u16) {
        self.seconds[timer.endpoint].observe(timer.started.elapsed().as_secs_f64());
        let labels = RequestLabels {
            endpoint: ENDPOINTS[timer.endpoint],
            status: Status(status),
        };
        match COMMON_STATUSES.iter().position(|&s| s == status) {
            Some(i) => self.common[timer.endpoint][i]
                .get_or_init(|| self.requests.get_or_create_owned(&labels))
                .inc(),
            None => self.requests.get_or_create(&labels).inc(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_a_fixed_set_of_endpoints() {
        assert_eq!(
            ENDPOINTS[endpoint_index("/router/receive/", false)],
            "/router/receive"
        );
        assert_eq!(ENDPOINTS[endpoint_index("/metrics", false)], "/metrics");
        assert_eq!(
            ENDPOINTS[endpoint_index("/router/console/x", true)],
            "console"
        );
        assert_eq!(ENDPOINTS[endpoint_index("/random/path", false)], "other");
        assert_eq!(ENDPOINTS[endpoint_index("/other", false)], "other");
    }
}
