//! The Erlang cookie: the shared secret of the node and its command-line tools, kept where
//! RabbitMQ keeps it (`$HOME/.erlang.cookie`), created on first start as Erlang does (20
//! random uppercase letters, readable by the owner only).

use crate::config::Config;
use std::io;
use std::path::{Path, PathBuf};

/// The variable whose value, when set, is the cookie itself (broker and tools).
pub const COOKIE_ENV: &str = "RABBITMQ_ERLANG_COOKIE";

/// Where the cookie file is: `cli.cookie_file`, else `$HOME/.erlang.cookie`, else
/// `<data_dir>/.erlang.cookie`. `home` is the value of `HOME`.
pub fn path(config: &Config, home: Option<&str>) -> PathBuf {
    if let Some(p) = &config.cli.cookie_file {
        return p.clone();
    }
    match home.filter(|h| !h.is_empty()) {
        Some(h) => Path::new(h).join(".erlang.cookie"),
        None => config.storage.data_dir.join(".erlang.cookie"),
    }
}

/// The cookie from the environment (`RABBITMQ_ERLANG_COOKIE`), if set and not empty.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    get(COOKIE_ENV).filter(|c| !c.is_empty())
}

/// Read the cookie at `path` (surrounding whitespace trimmed).
pub fn read(path: &Path) -> io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let cookie = text.trim();
    if cookie.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(cookie.to_string())
}

/// Read the cookie at `path`, creating the file (and its directory) first when missing.
pub fn read_or_create(path: &Path) -> io::Result<String> {
    match read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 20];
    crate::vhost::random_bytes(&mut bytes);
    let cookie: String = bytes.iter().map(|b| (b'A' + b % 26) as char).collect();
    write_private(path, &cookie)?;
    Ok(cookie)
}

#[cfg(unix)]
fn write_private(path: &Path, cookie: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // create_new: two brokers starting at once must not overwrite each other's cookie.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)?;
    f.write_all(cookie.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, cookie: &str) -> io::Result<()> {
    std::fs::write(path, cookie)
}

/// Compare two secrets in time independent of where they first differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cookie_is_created_private_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("warren-cookie-{}", std::process::id()));
        let file = dir.join("sub").join(".erlang.cookie");
        let c = read_or_create(&file).unwrap();
        assert_eq!(c.len(), 20);
        assert!(c.bytes().all(|b| b.is_ascii_uppercase()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o400);
        }
        assert_eq!(read_or_create(&file).unwrap(), c);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_is_configured_or_in_home_or_in_the_data_dir() {
        let mut cfg = Config::for_test("/data");
        cfg.cli.cookie_file = None;
        assert_eq!(path(&cfg, None), Path::new("/data/.erlang.cookie"));
        assert_eq!(
            path(&cfg, Some("/home/r")),
            Path::new("/home/r/.erlang.cookie")
        );
        cfg.cli.cookie_file = Some("/etc/cookie".into());
        assert_eq!(path(&cfg, Some("/home/r")), Path::new("/etc/cookie"));
        assert!(same(b"ABC", b"ABC") && !same(b"ABC", b"ABD") && !same(b"AB", b"ABC"));
    }
}
