//! Unpacking uploaded zips: good code, and every kind of bad zip rejected with the right
//! error and nothing left beside the destination.

#![allow(clippy::unwrap_used)]

use arcus_runtime_process::package::{UnpackLimits, check_entrypoint, unpack};
use arcus_runtime_process::{PrepareError, ProcessKind};
use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

fn opts(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(mode)
}

enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

fn build(entries: &[E]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for e in entries {
        match e {
            E::File(n, data, mode) => {
                w.start_file(*n, opts(*mode)).unwrap();
                w.write_all(data).unwrap();
            }
            E::Dir(n) => w.add_directory(*n, opts(0o755)).unwrap(),
            E::Link(n, t) => w.add_symlink(*n, *t, opts(0o777)).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

/// A parent dir (kept) and the destination inside it.
struct Dest {
    parent: tempfile::TempDir,
}

impl Dest {
    fn new() -> Self {
        Self {
            parent: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> std::path::PathBuf {
        self.parent.path().join("code")
    }
    fn assert_empty(&self) {
        let left: Vec<_> = std::fs::read_dir(self.parent.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

fn unpack_err(zip: &[u8]) -> (PrepareError, Dest) {
    let d = Dest::new();
    let err = unpack(zip, &d.path(), &UnpackLimits::default()).unwrap_err();
    d.assert_empty();
    (err, d)
}

fn assert_invalid(zip: &[u8], needle: &str) {
    match unpack_err(zip).0 {
        PrepareError::InvalidCode(m) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected InvalidCode({needle}), got {other:?}"),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn good_zip_unpacks_with_modes_and_inner_links() {
    let zip = build(&[
        E::File("app.py", b"def handler(e, c):\n    return 1\n", 0o600),
        E::Dir("lib/"),
        E::File("lib/util.py", b"X = 1\n", 0o644),
        E::File("bin/tool", b"#!/bin/sh\n", 0o700),
        E::File("deep/a/b/c.txt", b"c", 0o644),
        E::Link("lib/link.py", "util.py"),
        E::Link("up", "lib/../deep"),
    ]);
    let d = Dest::new();
    let r = unpack(&zip, &d.path(), &UnpackLimits::default()).unwrap();
    assert_eq!((r.files, r.symlinks), (4, 2));
    let code = d.path();
    assert_eq!(mode(&code.join("app.py")), 0o644);
    assert_eq!(mode(&code.join("bin/tool")), 0o755);
    assert_eq!(mode(&code.join("lib")), 0o755);
    assert_eq!(mode(&code.join("deep/a")), 0o755);
    assert_eq!(mode(&code), 0o755);
    assert_eq!(
        std::fs::read_to_string(code.join("lib/link.py")).unwrap(),
        "X = 1\n"
    );
    assert!(code.join("up/a/b/c.txt").exists());
    check_entrypoint(ProcessKind::Python3, "app.handler", &code).unwrap();
    check_entrypoint(ProcessKind::Python3, "lib.link.X", &code).unwrap();
    // Only the destination is left: no temp dir.
    let names: Vec<_> = std::fs::read_dir(d.parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("code")]);
    // An existing destination is never overwritten.
    assert!(matches!(
        unpack(&zip, &code, &UnpackLimits::default()),
        Err(PrepareError::Internal(_))
    ));
}

#[test]
fn traversal_and_absolute_names_are_rejected() {
    assert_invalid(
        &build(&[
            E::File("ok.txt", b"1", 0o644),
            E::File("../evil", b"x", 0o644),
        ]),
        "../evil",
    );
    assert_invalid(&build(&[E::File("a/../../evil", b"x", 0o644)]), "traversal");
    assert_invalid(&build(&[E::File("/abs", b"x", 0o644)]), "absolute");
    assert_invalid(
        &build(&[E::File("C:/win.txt", b"x", 0o644)]),
        "drive letter",
    );
    assert_invalid(&build(&[E::File("..\\evil", b"x", 0o644)]), "traversal");
}

#[test]
fn links_out_of_the_root_are_rejected() {
    assert_invalid(&build(&[E::Link("passwd", "/etc/passwd")]), "absolute");
    assert_invalid(&build(&[E::Link("a", "../../x")]), "outside the code root");
    assert_invalid(&build(&[E::Dir("d/"), E::Link("d/a", "../../x")]), "d/a");
    // A chain that only leaves the root once both links exist.
    assert_invalid(&build(&[E::Link("l1", "."), E::Link("l2", "l1/..")]), "l2");
    // Writing through a link.
    assert_invalid(
        &build(&[E::Link("l", "sub"), E::File("l/x", b"x", 0o644)]),
        "symlink",
    );
}

#[test]
fn conflicting_duplicates_are_rejected() {
    assert_invalid(
        &build(&[E::File("a", b"1", 0o644), E::File("a/b", b"2", 0o644)]),
        "a/b",
    );
    // Two entries with the same name (the writer refuses, so rename one in place).
    let mut zip = build(&[E::File("dup_1", b"1", 0o644), E::File("dup_2", b"2", 0o644)]);
    let (from, to) = (b"dup_2", b"dup_1");
    let mut i = 0;
    while i + from.len() <= zip.len() {
        if &zip[i..i + from.len()] == from {
            zip[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
    let (e, _) = unpack_err(&zip);
    assert!(matches!(e, PrepareError::InvalidCode(_)), "{e:?}");
}

#[test]
fn broken_zips_are_rejected() {
    assert_invalid(
        b"this is not a zip at all, just some garbage bytes",
        "not a valid zip",
    );
    assert_invalid(b"", "not a valid zip");
    let good = build(&[E::File("app.py", &vec![b'a'; 10_000], 0o644)]);
    assert_invalid(&good[..good.len() / 2], "not a valid zip");
    assert_invalid(&build(&[]), "non-empty");
    // CRC error: flip a byte of stored data.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    w.start_file("data.txt", stored).unwrap();
    w.write_all(b"MARKER-0123456789").unwrap();
    let mut zip = w.finish().unwrap().into_inner();
    let at = zip.windows(6).position(|x| x == b"MARKER").unwrap();
    zip[at] = b'N';
    assert_invalid(&zip, "data.txt");
}

#[test]
fn zip_bomb_is_stopped() {
    // 300 MiB of zeros, deflated (a few hundred KiB), built streaming.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("zeros.bin", opts(0o644)).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..300 {
        w.write_all(&chunk).unwrap();
    }
    let zip = w.finish().unwrap().into_inner();
    assert!(zip.len() < 2 << 20, "bomb is {} bytes", zip.len());
    let (e, _) = unpack_err(&zip);
    assert!(matches!(e, PrepareError::TooLarge(_)), "{e:?}");
}

#[test]
fn lying_header_sizes_are_not_trusted() {
    // 2 MiB of zeros whose headers claim 1000 bytes, against a 1 MiB limit.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("liar.bin", opts(0o644)).unwrap();
    w.write_all(&vec![0u8; 2 << 20]).unwrap();
    let mut zip = w.finish().unwrap().into_inner();
    let fake = 1000u32.to_le_bytes();
    assert_eq!(&zip[..4], b"PK\x03\x04");
    zip[22..26].copy_from_slice(&fake);
    let cd = zip.windows(4).rposition(|x| x == b"PK\x01\x02").unwrap();
    zip[cd + 24..cd + 28].copy_from_slice(&fake);
    let d = Dest::new();
    let limits = UnpackLimits {
        max_unzipped_bytes: 1 << 20,
        ..UnpackLimits::default()
    };
    let e = unpack(&zip, &d.path(), &limits).unwrap_err();
    d.assert_empty();
    eprintln!("liar: {e:?}");
    // Either the actual count trips the limit, or the reader refuses the mismatch.
    assert!(
        matches!(e, PrepareError::TooLarge(_) | PrepareError::InvalidCode(_)),
        "{e:?}"
    );
}

#[test]
fn too_many_entries() {
    let entries: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let list: Vec<E> = entries.iter().map(|n| E::File(n, b"x", 0o644)).collect();
    let d = Dest::new();
    let limits = UnpackLimits {
        max_entries: 10,
        ..UnpackLimits::default()
    };
    let e = unpack(&build(&list), &d.path(), &limits).unwrap_err();
    d.assert_empty();
    assert!(matches!(e, PrepareError::InvalidCode(m) if m.contains("entries")));
}

#[test]
fn non_executable_bootstrap_and_missing_handler() {
    let d = Dest::new();
    unpack(
        &build(&[E::File("bootstrap", b"#!/bin/sh\n", 0o644)]),
        &d.path(),
        &UnpackLimits::default(),
    )
    .unwrap();
    let e = check_entrypoint(ProcessKind::Custom, "", &d.path()).unwrap_err();
    assert!(e.to_string().contains("not executable"), "{e}");

    // A zip made on Windows: no unix mode, so `bootstrap` is not executable.
    let mut zip = build(&[E::File("bootstrap", b"#!/bin/sh\n", 0o755)]);
    let cd = zip.windows(4).rposition(|x| x == b"PK\x01\x02").unwrap();
    zip[cd + 5] = 0; // version made by: MS-DOS
    zip[cd + 38..cd + 42].copy_from_slice(&0x20u32.to_le_bytes()); // archive bit only
    let d2 = Dest::new();
    unpack(&zip, &d2.path(), &UnpackLimits::default()).unwrap();
    assert_eq!(mode(&d2.path().join("bootstrap")), 0o644);
    assert!(check_entrypoint(ProcessKind::Custom, "", &d2.path()).is_err());

    let d3 = Dest::new();
    unpack(
        &build(&[E::File("bootstrap", b"#!/bin/sh\n", 0o755)]),
        &d3.path(),
        &UnpackLimits::default(),
    )
    .unwrap();
    check_entrypoint(ProcessKind::Custom, "", &d3.path()).unwrap();

    let d4 = Dest::new();
    unpack(
        &build(&[
            E::File("other.py", b"", 0o644),
            E::File("index.js", b"", 0o644),
        ]),
        &d4.path(),
        &UnpackLimits::default(),
    )
    .unwrap();
    let e = check_entrypoint(ProcessKind::Python3, "app.handler", &d4.path()).unwrap_err();
    assert!(
        e.to_string()
            .contains("handler module app.py not found in the zip"),
        "{e}"
    );
    check_entrypoint(ProcessKind::Node, "index.handler", &d4.path()).unwrap();
    assert!(check_entrypoint(ProcessKind::Node, "app.handler", &d4.path()).is_err());
}

#[test]
fn non_utf8_names_are_rejected() {
    let mut zip = build(&[E::File("name-X.txt", b"x", 0o644)]);
    for i in 0..zip.len() - 6 {
        if &zip[i..i + 6] == b"name-X" {
            zip[i + 5] = 0xff;
        }
    }
    let (e, _) = unpack_err(&zip);
    assert!(matches!(e, PrepareError::InvalidCode(_)), "{e:?}");
}
