//! Opening the byte stream to a bearerbox: plain TCP, or TLS for a
//! bearerbox whose core group has `smsbox-port-ssl = true`.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Either kind of stream, behind one type so the session does not care.
pub trait BoxStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> BoxStream for T {}

/// A connected stream to the bearerbox.
pub type Stream = Pin<Box<dyn BoxStream>>;

/// How long a connection attempt may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<TlsSettings>>,
}

/// TLS to the bearerbox: the CA that signed its certificate, and the name
/// to check the certificate against.
pub struct TlsSettings {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the CA file {path}: {error}")]
    CaFile { path: PathBuf, error: String },
    #[error("the CA file {0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

impl TlsSettings {
    /// TLS trusting the certificates in the PEM file `ca_file`, checking the
    /// bearerbox's certificate against `server_name`.
    pub fn new(ca_file: PathBuf, server_name: &str) -> Result<TlsSettings, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&ca_file).map_err(|e| TlsSetupError::CaFile {
            path: ca_file.clone(),
            error: e.to_string(),
        })?;
        for cert in certs {
            let cert = cert.map_err(|e| TlsSetupError::CaFile {
                path: ca_file.clone(),
                error: e.to_string(),
            })?;
            roots
                .add(cert)
                .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(TlsSetupError::NoCertificate(ca_file));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsSetupError::ServerName(server_name.to_owned()))?;
        Ok(TlsSettings {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

impl Endpoint {
    /// `host:port`, for logs.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Connects, within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self) -> io::Result<Stream> {
        let attempt = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            // Acks and replies are small frames that must not wait for
            // Nagle's algorithm.
            tcp.set_nodelay(true)?;
            keepalive(&tcp)?;
            match &self.tls {
                None => Ok(Box::pin(tcp) as Stream),
                Some(tls) => {
                    let stream = tls.connector.connect(tls.server_name.clone(), tcp).await?;
                    Ok(Box::pin(stream) as Stream)
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {CONNECT_TIMEOUT:?}"),
            )),
        }
    }
}

/// TCP keepalive on the link: after [`KEEPALIVE_IDLE`] without traffic the
/// kernel probes the bearerbox's host every [`KEEPALIVE_INTERVAL`], and
/// after [`KEEPALIVE_PROBES`] unanswered probes the connection fails, so a
/// host that vanished or a network cut is found in about 25 s, without
/// replacing a healthy link that has nothing to carry. The bearerbox sends
/// boxes no heartbeats, so without this only `idle_timeout_secs` would
/// find such a link.
fn keepalive(tcp: &TcpStream) -> io::Result<()> {
    let params = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(tcp).set_tcp_keepalive(&params)
}

/// Silence before the first keepalive probe.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Time between keepalive probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes after which the connection is dead.
const KEEPALIVE_PROBES: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_link_socket_probes_a_silent_peer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        keepalive(&tcp).unwrap();
        let sock = socket2::SockRef::from(&tcp);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
    }
}
