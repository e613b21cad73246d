//! TLS for the mock: a generated CA and a localhost certificate signed by it, or the user's files.
//!
//! Why a CA and not one self-signed certificate: curl (OpenSSL) and Go accept a self-signed leaf
//! as its own trust anchor, but webpki (rustls) does not, so a daemon built on rustls could not be
//! pointed at a lone self-signed leaf. With a CA in the printed file every client can trust it.

use std::fs::OpenOptions;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::MockError;

/// The server side, plus the CA file written for clients (self-signed mode).
pub(crate) struct TlsSetup {
    pub config: Arc<ServerConfig>,
    /// The CA certificate file the mock wrote, and its PEM.
    pub ca: Option<(PathBuf, String)>,
}

fn tls_err(what: impl Into<String>) -> MockError {
    MockError::Tls {
        reason: what.into(),
    }
}

/// Generates a CA and a leaf for `localhost`, `127.0.0.1` and `::1`; writes the CA certificate
/// (PEM) to `ca_out`, or to a new file in the temporary directory.
pub(crate) fn self_signed(ca_out: Option<&Path>) -> Result<TlsSetup, MockError> {
    let gen_err = |e: rcgen::Error| tls_err(format!("certificate generation failed: {e}"));
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "streamcheck mock-api CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(gen_err)?;

    let leaf_key = KeyPair::generate().map_err(gen_err)?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut leaf_params = CertificateParams::new(names).map_err(gen_err)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(gen_err)?;

    let ca_pem = ca.pem();
    let path = write_ca(ca_out, &ca_pem)?;
    let chain = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| tls_err(format!("generated key is unusable: {e}")))?;
    Ok(TlsSetup {
        config: server_config(chain, key)?,
        ca: Some((path, ca_pem)),
    })
}

fn write_ca(ca_out: Option<&Path>, pem: &str) -> Result<PathBuf, MockError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    if let Some(path) = ca_out {
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .and_then(|mut f| f.write_all(pem.as_bytes()));
        return written
            .map(|()| path.to_path_buf())
            .map_err(|source| MockError::CertFile {
                path: path.to_path_buf(),
                source,
            });
    }
    create_fresh(&std::env::temp_dir(), pem, &SEQ)
}

/// Writes `pem` to a fresh `streamcheck-mock-ca-PID-N.pem` in `dir`, N from `seq`: never
/// following a planted file or link, and skipping a name taken already (a killed process with
/// the same PID leaves its file behind, and PIDs wrap).
fn create_fresh(dir: &Path, pem: &str, seq: &AtomicU64) -> Result<PathBuf, MockError> {
    loop {
        let path = dir.join(format!(
            "streamcheck-mock-ca-{}-{}.pem",
            std::process::id(),
            seq.fetch_add(1, Ordering::Relaxed)
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(pem.as_bytes()));
        match written {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(MockError::CertFile { path, source }),
        }
    }
}

/// Loads a PEM certificate chain and private key.
pub(crate) fn from_files(cert: &Path, key: &Path) -> Result<TlsSetup, MockError> {
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(BufReader::new)
            .map_err(|source| MockError::CertFile {
                path: p.to_path_buf(),
                source,
            })
    };
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|source| MockError::CertFile {
            path: cert.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(tls_err(format!(
            "{} holds no PEM CERTIFICATE block; pass the server certificate chain as PEM",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|source| MockError::CertFile {
            path: key.to_path_buf(),
            source,
        })?
        .ok_or_else(|| {
            tls_err(format!(
                "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1); pass the certificate's key",
                key.display()
            ))
        })?;
    Ok(TlsSetup {
        config: server_config(chain, key)?,
        ca: None,
    })
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, MockError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            tls_err(format!(
                "certificate and key do not form a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_left_behind_under_the_same_name_is_skipped_not_an_error() {
        let dir = std::env::temp_dir().join(format!("streamcheck-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A killed process with this PID left files under the first three names.
        for seq in 0..3 {
            let name = format!("streamcheck-mock-ca-{}-{seq}.pem", std::process::id());
            std::fs::write(dir.join(name), "old").unwrap();
        }
        let path = create_fresh(&dir, "pem", &AtomicU64::new(0)).expect("a free name is found");
        let want = format!("streamcheck-mock-ca-{}-3.pem", std::process::id());
        assert_eq!(path, dir.join(want));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "pem");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
