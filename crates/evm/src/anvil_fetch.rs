//! Getting the pinned anvil without Node.js: the tarball of the npm package
//! `@foundry-rs/anvil-<platform>` named in `contracts/package-lock.json`, fetched from the npm
//! registry, checked against the lockfile's `integrity` (SHA-512) before anything is unpacked,
//! and its one binary written to `target/anvil/<package>-<version>/`.
//!
//! The lockfile is the only pin: `npm ci` and this fetch install the same bytes. A download that
//! does not match is refused, never run. Parallel tests may fetch at once; each writes to its own
//! temporary file and renames it into place, so a reader sees a whole binary or none.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha512};

/// The npm registry the lockfile's packages come from.
const REGISTRY: &str = "https://registry.npmjs.org";

/// Upper bound on the tarball (anvil 1.7.1 is 19 MB).
const MAX_TARBALL_BYTES: u64 = 256 << 20;

/// The platform package npm would pick on this machine, if Foundry publishes one.
fn platform_package() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("anvil-linux-amd64"),
        ("linux", "aarch64") => Some("anvil-linux-arm64"),
        ("macos", "x86_64") => Some("anvil-darwin-amd64"),
        ("macos", "aarch64") => Some("anvil-darwin-arm64"),
        ("windows", "x86_64") => Some("anvil-win32-amd64"),
        _ => None,
    }
}

fn binary_name() -> &'static str {
    if cfg!(windows) { "anvil.exe" } else { "anvil" }
}

/// A package pinned by the lockfile: its version and SHA-512 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Package name without the scope, e.g. `anvil-linux-amd64`.
    pub package: String,
    /// The pinned version.
    pub version: String,
    /// The tarball's SHA-512, from the lockfile's `sha512-<base64>` integrity.
    pub sha512: [u8; 64],
}

impl Pin {
    /// The registry URL of the tarball, npm's layout for scoped packages.
    pub fn tarball_url(&self) -> String {
        format!(
            "{REGISTRY}/@foundry-rs/{p}/-/{p}-{v}.tgz",
            p = self.package,
            v = self.version
        )
    }
}

/// Reads the pin of `package` (e.g. `anvil-linux-amd64`) from a `package-lock.json` text.
pub fn pin_from_lockfile(lockfile: &str, package: &str) -> Result<Pin, String> {
    let lock: serde_json::Value =
        serde_json::from_str(lockfile).map_err(|e| format!("package-lock.json: {e}"))?;
    let key = format!("node_modules/@foundry-rs/{package}");
    let entry = &lock["packages"][&key];
    let version = entry["version"]
        .as_str()
        .ok_or_else(|| format!("package-lock.json has no version for {key}"))?;
    // A version goes into a URL and a path: keep it to what npm versions are made of.
    if version.is_empty()
        || !version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
    {
        return Err(format!(
            "package-lock.json: odd version {version:?} for {key}"
        ));
    }
    let integrity = entry["integrity"]
        .as_str()
        .ok_or_else(|| format!("package-lock.json has no integrity for {key}"))?;
    let digest = integrity
        .strip_prefix("sha512-")
        .ok_or_else(|| format!("{key}: integrity is not sha512"))?;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(digest)
        .map_err(|e| format!("{key}: integrity is not base64: {e}"))?;
    let sha512: [u8; 64] = digest
        .try_into()
        .map_err(|_| format!("{key}: integrity is not 64 bytes"))?;
    Ok(Pin {
        package: package.to_string(),
        version: version.to_string(),
        sha512,
    })
}

/// Checks `tarball` against the pin and returns the anvil binary inside it
/// (`package/bin/anvil`, as npm packs it).
pub fn binary_from_tarball(pin: &Pin, tarball: &[u8]) -> Result<Vec<u8>, String> {
    let digest: [u8; 64] = Sha512::digest(tarball).into();
    if digest != pin.sha512 {
        return Err(format!(
            "{}-{}.tgz does not match the integrity in package-lock.json",
            pin.package, pin.version
        ));
    }
    let wanted = format!("package/bin/{}", binary_name());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let entries = archive
        .entries()
        .map_err(|e| format!("{}: {e}", pin.package))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", pin.package))?;
        let path = entry.path().map_err(|e| format!("{}: {e}", pin.package))?;
        if path.to_string_lossy() == wanted {
            let mut binary = Vec::new();
            entry
                .read_to_end(&mut binary)
                .map_err(|e| format!("{}: {e}", pin.package))?;
            return Ok(binary);
        }
    }
    Err(format!("{} has no {wanted}", pin.package))
}

/// Where the fetched binary of `pin` lives under the repository at `repo`.
pub fn cached_path(repo: &Path, pin: &Pin) -> PathBuf {
    repo.join("target/anvil")
        .join(format!("{}-{}", pin.package, pin.version))
        .join(binary_name())
}

/// The pinned anvil for this platform: the cached copy, or fetched, checked and cached now.
pub fn fetch_pinned(repo: &Path) -> Result<PathBuf, String> {
    let package = platform_package().ok_or_else(|| {
        format!(
            "no anvil package for {}-{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    })?;
    let lockfile = repo.join("contracts/package-lock.json");
    let text =
        std::fs::read_to_string(&lockfile).map_err(|e| format!("{}: {e}", lockfile.display()))?;
    let pin = pin_from_lockfile(&text, package)?;
    let path = cached_path(repo, &pin);
    if path.is_file() {
        return Ok(path);
    }
    let url = pin.tarball_url();
    // reqwest's blocking client must not run on an async runtime's thread: give it its own.
    let tarball = std::thread::spawn(move || download(&url))
        .join()
        .map_err(|_| "the anvil download thread panicked".to_string())??;
    let binary = binary_from_tarball(&pin, &tarball)?;
    let dir = path.parent().expect("cached path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let partial = dir.join(format!(".{}.{}", binary_name(), std::process::id()));
    std::fs::write(&partial, &binary).map_err(|e| format!("{}: {e}", partial.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", partial.display()))?;
    }
    std::fs::rename(&partial, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// reqwest's top-level error says only "error sending request"; the cause is in its sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn download(url: &str) -> Result<Vec<u8>, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let response = client
        .get(url)
        .send()
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("fetching {url}: {}", error_chain(&e)))?;
    let mut body = Vec::new();
    response
        .take(MAX_TARBALL_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("fetching {url}: {e}"))?;
    if body.len() as u64 > MAX_TARBALL_BYTES {
        return Err(format!("{url} is larger than {MAX_TARBALL_BYTES} bytes"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        let mut gz = builder.into_inner().unwrap();
        gz.flush().unwrap();
        gz.finish().unwrap()
    }

    fn pin_for(tgz: &[u8]) -> Pin {
        Pin {
            package: "anvil-linux-amd64".into(),
            version: "1.7.1".into(),
            sha512: Sha512::digest(tgz).into(),
        }
    }

    #[test]
    fn the_repository_lockfile_pins_every_platform_package() {
        let text = include_str!("../../../contracts/package-lock.json");
        for package in [
            "anvil-linux-amd64",
            "anvil-linux-arm64",
            "anvil-darwin-amd64",
            "anvil-darwin-arm64",
            "anvil-win32-amd64",
        ] {
            let pin = pin_from_lockfile(text, package).unwrap();
            assert_eq!(
                pin.tarball_url(),
                format!(
                    "https://registry.npmjs.org/@foundry-rs/{package}/-/{package}-{}.tgz",
                    pin.version
                )
            );
        }
    }

    #[test]
    fn a_lockfile_without_the_package_or_with_another_digest_is_refused() {
        assert!(pin_from_lockfile("{}", "anvil-linux-amd64").is_err());
        let sha1 = r#"{"packages":{"node_modules/@foundry-rs/anvil-linux-amd64":
            {"version":"1.7.1","integrity":"sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}"#;
        assert!(pin_from_lockfile(sha1, "anvil-linux-amd64").is_err());
        let path_in_version = r#"{"packages":{"node_modules/@foundry-rs/anvil-linux-amd64":
            {"version":"../../x","integrity":"sha512-AAAA"}}}"#;
        assert!(pin_from_lockfile(path_in_version, "anvil-linux-amd64").is_err());
    }

    #[test]
    fn the_binary_comes_out_of_a_matching_tarball_only() {
        let tgz = tarball(&[
            ("package/package.json", b"{}"),
            ("package/bin/anvil", b"\x7fELF pinned"),
        ]);
        let pin = pin_for(&tgz);
        assert_eq!(binary_from_tarball(&pin, &tgz).unwrap(), b"\x7fELF pinned");

        let mut tampered = tgz.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let err = binary_from_tarball(&pin, &tampered).unwrap_err();
        assert!(err.contains("integrity"), "{err}");

        let empty = tarball(&[("package/package.json", b"{}")]);
        let err = binary_from_tarball(&pin_for(&empty), &empty).unwrap_err();
        assert!(err.contains("has no package/bin/anvil"), "{err}");
    }
}
