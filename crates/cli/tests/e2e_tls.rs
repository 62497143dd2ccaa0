//! End-to-end: `arcus serve` terminating TLS with a certificate generated here (a CA and
//! a leaf for `localhost` signed by it), checked with two real TLS clients — rustls
//! trusting only that CA, and curl with `--cacert` — plus the start-up refusals for a
//! missing file or bad PEM, naming the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::bin;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA certificate (PEM) and a leaf for `localhost`/127.0.0.1 signed by it (PEM cert,
/// PEM key).
fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "arcus test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// A running `arcus serve` started by this test, killed on drop.
struct TlsNode {
    child: Child,
    addr: SocketAddr,
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, config: &str) -> Command {
    std::fs::write(dir.join("arcus.toml"), config).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(dir.join("arcus.toml"))
        .env_remove("ARCUS_TLS_CERT")
        .env_remove("ARCUS_TLS_KEY")
        .env_remove("ARCUS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Starts the node and waits (up to 60 s) for `arcus listening on https://ADDR`.
fn start(dir: &Path, config: &str) -> TlsNode {
    let mut child = serve(dir, config).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("arcus listening on https://") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the node prints its https address");
    TlsNode {
        child,
        addr: addr.parse().unwrap(),
    }
}

/// A rustls client trusting only `ca_pem`.
fn connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `GET path` over TLS with SNI `localhost`; the whole response as text.
async fn https_get(connector: &tokio_rustls::TlsConnector, addr: SocketAddr, path: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .expect("the response comes in time")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_terminates_tls_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates();
    std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
    std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key).unwrap();
    let config = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    );
    let node = start(dir.path(), &config);

    let trusted = connector(&ca);
    let answer = https_get(&trusted, node.addr, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    let api = https_get(&trusted, node.addr, "/api/v1/apps").await;
    assert!(api.starts_with("HTTP/1.1 401"), "{api}");

    // A client trusting another CA refuses the certificate.
    let (other_ca, _, _) = certificates();
    let tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    assert!(connector(&other_ca).connect(name, tcp).await.is_err());

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));

    // curl, a third-party client, with the CA as its only trust anchor.
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .arg(format!("https://localhost:{}/healthz", node.addr.port()))
        .output();
    match curl {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
        }
        Err(e) => eprintln!("curl not available here ({e}); rustls checks above stand"),
    }
}

/// The node exits non-zero within the deadline; its stderr.
fn refused(dir: &Path, config: &str) -> String {
    let mut child = serve(dir, config).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "the node started with {config}");
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node did not refuse {config}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn missing_files_and_bad_pem_stop_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificates();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let cases = [
        (
            format!("[tls]\ncert = \"{}\"\n", cert_path.display()),
            "tls.key",
        ),
        (
            format!(
                "[tls]\ncert = \"{}/none.pem\"\nkey = \"{}\"\n",
                dir.path().display(),
                key_path.display()
            ),
            "tls.cert",
        ),
        (
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                junk.display(),
                key_path.display()
            ),
            "tls.cert",
        ),
        (
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert_path.display(),
                cert_path.display()
            ),
            "tls.key",
        ),
    ];
    for (config, key_name) in cases {
        let err = refused(dir.path(), &config);
        assert!(err.contains(key_name), "{config}: {err}");
    }
}
