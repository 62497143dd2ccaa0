//! Safe unpacking of an uploaded code zip, as Lambda does it: no path traversal, no
//! absolute names, no symlinks that leave the code root, a bounded number of entries and
//! a bounded *actual* unzipped size (header sizes are never trusted), and all-or-nothing
//! extraction (a temp dir beside the destination, renamed into place at the end).
//!
//! [`check_entrypoint`] then checks that the handler (python3, node) or the executable
//! `bootstrap` (custom) is in the unpacked code, so a bad upload fails at upload time.

mod entrypoint;
mod fuzz;
mod links;

pub use entrypoint::check_entrypoint;
#[doc(hidden)]
pub use fuzz::fuzz_unpack;

use crate::PrepareError;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// File type bits of a unix mode.
const S_IFMT: u32 = 0o170000;
/// Symlink type of a unix mode.
const S_IFLNK: u32 = 0o120000;
/// Longest symlink target accepted (Linux's `PATH_MAX`).
const MAX_LINK_TARGET: u64 = 4096;
/// Longest name of one path component (Linux's `NAME_MAX`).
const MAX_NAME_COMPONENT: usize = 255;
/// Longest entry name: leaves room under `PATH_MAX` for the code root's own path.
const MAX_ENTRY_NAME: usize = 2048;

/// Limits of one unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Largest total of decompressed bytes (default 250 MiB, Lambda's unzipped limit).
    pub max_unzipped_bytes: u64,
    /// Largest number of entries in the zip (default 20 000).
    pub max_entries: usize,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_unzipped_bytes: 250 * 1024 * 1024,
            max_entries: 20_000,
        }
    }
}

/// What an unpack wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnpackReport {
    /// Regular files written.
    pub files: usize,
    /// Directories created (explicit entries and implied parents).
    pub dirs: usize,
    /// Symlinks created (all pointing inside the code root).
    pub symlinks: usize,
    /// Decompressed bytes written (file contents and link targets).
    pub bytes: u64,
}

/// What a path inside the archive has become, to detect conflicting duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

/// Removes a half-written temp dir unless disarmed.
struct TempDirGuard {
    path: Option<PathBuf>,
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// Unpacks `zip` into `dest` (which must not exist yet), all or nothing.
///
/// Entries are written into a temp dir beside `dest` that is renamed to `dest` at the
/// end; on any error the temp dir is removed and `dest` is not created. Files get mode
/// 0644, or 0755 when the entry's unix mode has an execute bit; directories 0755.
/// Backslashes in names are treated as separators (zips made by some Windows tools).
///
/// Errors: [`PrepareError::InvalidCode`] for a broken zip, an unsafe or non-UTF-8 name,
/// a symlink leaving the root, a conflicting duplicate, too many entries or an empty zip;
/// [`PrepareError::TooLarge`] when the decompressed bytes pass the limit;
/// [`PrepareError::Internal`] for host I/O failures.
pub fn unpack(
    zip: &[u8],
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackReport, PrepareError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| PrepareError::InvalidCode(format!("the upload is not a valid zip: {e}")))?;
    if archive.is_empty() {
        return Err(PrepareError::InvalidCode(
            "uploaded file must be a non-empty zip".into(),
        ));
    }
    let records = central_directory_records(zip).unwrap_or(archive.len() as u64);
    if records > archive.len() as u64 {
        return Err(PrepareError::InvalidCode(format!(
            "the zip has duplicate entry names ({records} entries, {} distinct names)",
            archive.len()
        )));
    }
    if archive.len() > limits.max_entries {
        return Err(PrepareError::InvalidCode(format!(
            "the zip has {} entries, more than the limit of {}",
            archive.len(),
            limits.max_entries
        )));
    }
    // Cheap early rejection for honest headers; the real check counts actual bytes.
    let declared: u64 = (0..archive.len())
        .filter_map(|i| archive.by_index_raw(i).ok().map(|f| f.size()))
        .fold(0u64, u64::saturating_add);
    if declared > limits.max_unzipped_bytes {
        return Err(too_large(limits));
    }

    let (parent, name) = match (dest.parent(), dest.file_name()) {
        (Some(p), Some(n)) => (p, n.to_string_lossy().into_owned()),
        _ => {
            return Err(PrepareError::Internal(format!(
                "bad destination {}",
                dest.display()
            )));
        }
    };
    if dest.symlink_metadata().is_ok() {
        return Err(PrepareError::Internal(format!(
            "{} already exists",
            dest.display()
        )));
    }
    fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    let tmp = parent.join(format!(".{name}.unpack-{}", uuid::Uuid::new_v4().simple()));
    fs::create_dir(&tmp).map_err(|e| io_err(&tmp, e))?;
    let mut guard = TempDirGuard {
        path: Some(tmp.clone()),
    };
    set_mode(&tmp, 0o755)?;

    let mut report = UnpackReport::default();
    let mut kinds: HashMap<PathBuf, Kind> = HashMap::new();
    let mut links: Vec<PathBuf> = Vec::new();
    let mut budget = limits.max_unzipped_bytes;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| PrepareError::InvalidCode(format!("zip entry #{i} is unreadable: {e}")))?;
        let raw = entry.name_raw().to_vec();
        let rel = safe_name(&raw)?;
        let shown = rel.display().to_string();
        let mode = entry.unix_mode();
        let is_link = mode.is_some_and(|m| m & S_IFMT == S_IFLNK);
        let kind = if is_link {
            Kind::Symlink
        } else if entry.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        };
        claim(&mut kinds, &rel, kind, &mut report)?;
        let target = tmp.join(&rel);
        if let Some(p) = target.parent() {
            fs::create_dir_all(p).map_err(|e| io_err(p, e))?;
        }
        match kind {
            Kind::Dir => {
                match fs::create_dir(&target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err(&target, e)),
                }
                set_mode(&target, 0o755)?;
            }
            Kind::Symlink => {
                let mut buf = Vec::new();
                (&mut entry)
                    .take(MAX_LINK_TARGET + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| bad_data(&shown, e))?;
                if buf.len() as u64 > MAX_LINK_TARGET {
                    return Err(PrepareError::InvalidCode(format!(
                        "symlink {shown} has a target longer than {MAX_LINK_TARGET} bytes"
                    )));
                }
                charge(&mut budget, buf.len() as u64, limits)?;
                report.bytes += buf.len() as u64;
                let link_target = links::check_target(&rel, &buf)?;
                std::os::unix::fs::symlink(&link_target, &target)
                    .map_err(|e| io_err(&target, e))?;
                links.push(rel.clone());
                report.symlinks += 1;
            }
            Kind::File => {
                let written = write_file(&mut entry, &target, &shown, &mut budget, limits)?;
                report.bytes += written;
                let exec = mode.is_some_and(|m| m & 0o111 != 0);
                set_mode(&target, if exec { 0o755 } else { 0o644 })?;
                report.files += 1;
            }
        }
    }
    // Lexical checks cannot see chains of links (`a -> .`, `b -> a/..`): resolve each
    // link on the extracted tree as the kernel would.
    for rel in &links {
        links::check_resolves_inside(&tmp, rel)?;
    }
    fs::rename(&tmp, dest).map_err(|e| io_err(dest, e))?;
    guard.path = None;
    Ok(report)
}

/// The number of central-directory records the end-of-central-directory record declares
/// (the zip reader keeps only the last of entries with equal names, hiding duplicates).
fn central_directory_records(zip: &[u8]) -> Option<u64> {
    let tail_start = zip.len().saturating_sub(22 + 65_535);
    let eocd = tail_start
        + zip[tail_start..]
            .windows(4)
            .rposition(|w| w == b"PK\x05\x06")?;
    let count = u16::from_le_bytes([*zip.get(eocd + 10)?, *zip.get(eocd + 11)?]);
    if count != u16::MAX {
        return Some(u64::from(count));
    }
    // Zip64: the locator sits just before the EOCD and points at the zip64 EOCD record.
    let loc = eocd.checked_sub(20)?;
    if zip.get(loc..loc + 4)? != b"PK\x06\x07" {
        return None;
    }
    let off = u64::from_le_bytes(zip.get(loc + 8..loc + 16)?.try_into().ok()?);
    let rec = usize::try_from(off).ok()?;
    if zip.get(rec..rec + 4)? != b"PK\x06\x06" {
        return None;
    }
    Some(u64::from_le_bytes(
        zip.get(rec + 32..rec + 40)?.try_into().ok()?,
    ))
}

/// Records what `rel` (and its implied parents) are, rejecting conflicts.
fn claim(
    kinds: &mut HashMap<PathBuf, Kind>,
    rel: &Path,
    kind: Kind,
    report: &mut UnpackReport,
) -> Result<(), PrepareError> {
    let mut parents: Vec<&Path> = rel.ancestors().skip(1).collect();
    parents.pop(); // the empty path (root)
    for p in parents.into_iter().rev() {
        match kinds.get(p) {
            None => {
                kinds.insert(p.to_path_buf(), Kind::Dir);
                report.dirs += 1;
            }
            Some(Kind::Dir) => {}
            Some(other) => {
                return Err(PrepareError::InvalidCode(format!(
                    "zip entry {} is inside {}, which is a {}",
                    rel.display(),
                    p.display(),
                    if *other == Kind::File {
                        "file"
                    } else {
                        "symlink"
                    }
                )));
            }
        }
    }
    match (kinds.get(rel), kind) {
        (None, _) => {
            kinds.insert(rel.to_path_buf(), kind);
            if kind == Kind::Dir {
                report.dirs += 1;
            }
            Ok(())
        }
        (Some(Kind::Dir), Kind::Dir) => Ok(()),
        (Some(_), _) => Err(PrepareError::InvalidCode(format!(
            "zip entry {} appears more than once",
            rel.display()
        ))),
    }
}

/// Validates a raw entry name into a relative path of normal components.
fn safe_name(raw: &[u8]) -> Result<PathBuf, PrepareError> {
    let name = std::str::from_utf8(raw).map_err(|_| {
        PrepareError::InvalidCode(format!(
            "zip entry name {} is not valid UTF-8",
            String::from_utf8_lossy(raw)
        ))
    })?;
    let bad = |why: &str| PrepareError::InvalidCode(format!("zip entry {name:?} {why}"));
    if name.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if name.len() > MAX_ENTRY_NAME {
        return Err(PrepareError::InvalidCode(format!(
            "zip entry name of {} bytes is longer than {MAX_ENTRY_NAME} bytes",
            name.len()
        )));
    }
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(bad("has an absolute path"));
    }
    let mut out = PathBuf::new();
    for (i, part) in unified.split('/').enumerate() {
        match part {
            "" | "." => {}
            ".." => return Err(bad("has a '..' component (path traversal)")),
            p if i == 0 && p.len() >= 2 && p.as_bytes()[1] == b':' => {
                return Err(bad("starts with a drive letter"));
            }
            p if p.len() > MAX_NAME_COMPONENT => {
                return Err(bad(&format!(
                    "has a component longer than {MAX_NAME_COMPONENT} bytes"
                )));
            }
            p => out.push(p),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad("has an empty path"));
    }
    Ok(out)
}

/// Streams one entry to a new file, counting the actual decompressed bytes.
fn write_file(
    entry: &mut impl Read,
    target: &Path,
    shown: &str,
    budget: &mut u64,
    limits: &UnpackLimits,
) -> Result<u64, PrepareError> {
    // create_new: never follows or overwrites an existing path (links included).
    let mut out: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(|e| io_err(target, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = entry.read(&mut buf).map_err(|e| bad_data(shown, e))?;
        if n == 0 {
            break;
        }
        charge(budget, n as u64, limits)?;
        out.write_all(&buf[..n]).map_err(|e| io_err(target, e))?;
        written += n as u64;
    }
    Ok(written)
}

/// Takes `n` bytes from the remaining budget.
fn charge(budget: &mut u64, n: u64, limits: &UnpackLimits) -> Result<(), PrepareError> {
    *budget = budget.checked_sub(n).ok_or_else(|| too_large(limits))?;
    Ok(())
}

fn too_large(limits: &UnpackLimits) -> PrepareError {
    PrepareError::TooLarge(format!(
        "unzipped code is larger than the limit of {} bytes",
        limits.max_unzipped_bytes
    ))
}

fn bad_data(shown: &str, e: std::io::Error) -> PrepareError {
    PrepareError::InvalidCode(format!("zip entry {shown} is corrupt: {e}"))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), PrepareError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, e: std::io::Error) -> PrepareError {
    PrepareError::Internal(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(safe_name(b"a/./b//c").unwrap(), PathBuf::from("a/b/c"));
        assert_eq!(safe_name(b"dir/").unwrap(), PathBuf::from("dir"));
        assert!(safe_name(b"../x").is_err());
        assert!(safe_name(b"a/../../x").is_err());
        assert!(safe_name(b"..\\x").is_err());
        assert!(safe_name(b"/etc/passwd").is_err());
        assert!(safe_name(b"C:/x").is_err());
        assert!(safe_name(b"C:x").is_err());
        assert!(safe_name(b"./").is_err());
        assert!(safe_name(b"a\xffb").is_err());
        assert!(safe_name(b"a\0b").is_err());
        // Found by the unzip fuzz target: an over-long name was a host I/O error.
        assert!(safe_name(&[b'a'; 255]).is_ok());
        assert!(safe_name(&[b'a'; 256]).is_err());
        assert!(safe_name("d/".repeat(1100).as_bytes()).is_err());
    }

    #[test]
    fn conflicts() {
        let mut k = HashMap::new();
        let mut r = UnpackReport::default();
        claim(&mut k, Path::new("a/b"), Kind::File, &mut r).unwrap();
        assert!(claim(&mut k, Path::new("a"), Kind::Dir, &mut r).is_ok());
        assert!(claim(&mut k, Path::new("a/b"), Kind::File, &mut r).is_err());
        assert!(claim(&mut k, Path::new("a/b/c"), Kind::File, &mut r).is_err());
        claim(&mut k, Path::new("l"), Kind::Symlink, &mut r).unwrap();
        assert!(claim(&mut k, Path::new("l/x"), Kind::File, &mut r).is_err());
        assert_eq!(r.dirs, 1);
    }
}
