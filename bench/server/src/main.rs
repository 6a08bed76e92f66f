//! Loopback WebSocket server for the ctrlchan benchmark, on a third-party stack (tokio +
//! tokio-tungstenite + tokio-rustls) so that it is not the bottleneck at 10 000 channels.
//!
//!     bench-server --threads 2 --cert bench/certs/server.pem --key bench/certs/server.key
//!
//! Listens on two ephemeral loopback ports, plain and TLS, prints `PORT <ws> <wss>` once both
//! accept, answers pings (inside tungstenite), echoes data messages, never pings on its own, and
//! exits when its standard input closes.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn listener(port: u16) -> std::io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    sock.listen(16_384)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

fn tls_acceptor(cert: &str, key: &str) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).expect("cert file").collect::<Result<_, _>>().expect("cert pem");
    let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server cert");
    Arc::new(cfg)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads").and_then(|v| v.parse().ok()).unwrap_or(2);
    let cert = arg(&args, "--cert").unwrap_or_else(|| "bench/certs/server.pem".into());
    let key = arg(&args, "--key").unwrap_or_else(|| "bench/certs/server.key".into());
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_io().build().expect("tokio runtime");
    rt.block_on(async move {
        // `--ws-port` / `--wss-port`: fixed ports (a restart on the same ports); default ephemeral.
        let port = |name: &str| arg(&args, name).and_then(|v| v.parse().ok()).unwrap_or(0u16);
        let plain = listener(port("--ws-port")).expect("ws listener");
        let tls = listener(port("--wss-port")).expect("wss listener");
        let acceptor = TlsAcceptor::from(tls_acceptor(&cert, &key));
        println!("PORT {} {}", plain.local_addr().expect("addr").port(), tls.local_addr().expect("addr").port());
        tokio::spawn(async move {
            while let Ok((s, _)) = plain.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(serve(s));
            }
        });
        tokio::spawn(async move {
            while let Ok((s, _)) = tls.accept().await {
                let _ = s.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(s) = acceptor.accept(s).await {
                        serve(s).await;
                    }
                });
            }
        });
        // Exit when the driver closes our stdin.
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    });
    rt.shutdown_background();
}
