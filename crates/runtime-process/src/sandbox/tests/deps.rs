//! Dependency builds inside the sandbox (network tests of PyPI and npm).

use super::*;
use crate::sandbox::tests as t;
use crate::{ProcessConfig, ProcessKind};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn config(work: &Path) -> ProcessConfig {
    ProcessConfig {
        work_dir: work.to_path_buf(),
        python3: "/usr/bin/python3".into(),
        node: "/usr/bin/node".into(),
        bwrap: t::BWRAP.into(),
        slirp4netns: "/usr/bin/slirp4netns".into(),
        sandbox_uid: t::NOBODY,
        sandbox_gid: t::NOBODY,
        tmp_size_mb: 64,
        pids_max: 256,
        max_instances: 4,
        memory_budget_mb: 16 * 1024,
        idle_timeout: Duration::from_secs(60),
        spares: 0,
    }
}

fn layers(work: &Path) -> Vec<String> {
    fs::read_dir(work.join("layers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn deps_hash_depends_on_kind_and_manifests() {
    let code = t::dir();
    assert_eq!(
        manifest_hash(ProcessKind::Python3, code.path()).unwrap(),
        None
    );
    fs::write(code.path().join("requirements.txt"), "six==1.16.0\n").unwrap();
    let a = manifest_hash(ProcessKind::Python3, code.path())
        .unwrap()
        .unwrap();
    assert_eq!(manifest_hash(ProcessKind::Node, code.path()).unwrap(), None);
    assert_eq!(
        manifest_hash(ProcessKind::Custom, code.path()).unwrap(),
        None
    );
    fs::write(code.path().join("requirements.txt"), "six==1.15.0\n").unwrap();
    let b = manifest_hash(ProcessKind::Python3, code.path())
        .unwrap()
        .unwrap();
    assert_ne!(a, b);
    // A lockfile without package.json is no manifest.
    fs::write(code.path().join("package-lock.json"), "{}").unwrap();
    assert_eq!(manifest_hash(ProcessKind::Node, code.path()).unwrap(), None);
}

#[tokio::test]
async fn deps_python_layer_builds_is_cached_and_importable_in_sandbox() {
    let Some(s) = t::support() else { return };
    let work = t::dir();
    let code = t::dir();
    fs::write(code.path().join("requirements.txt"), "six==1.16.0\n").unwrap();
    let cfg = config(work.path());
    let (layer, log) = build(&cfg, &s, ProcessKind::Python3, code.path())
        .await
        .unwrap();
    let layer = layer.unwrap();
    assert!(layer.join("python/six.py").is_file(), "{log}");
    assert!(log.contains("six"), "{log}");
    let meta = fs::metadata(layer.join("python/six.py")).unwrap();
    assert_eq!(meta.uid(), 0, "finished layers are root-owned");
    assert_eq!(meta.mode() & 0o022, 0);
    assert_eq!(layers(work.path()).len(), 2, "{:?}", layers(work.path())); // dir + log

    let started = std::time::Instant::now();
    let (again, again_log) = build(&cfg, &s, ProcessKind::Python3, code.path())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "cached");
    assert_eq!(again.as_ref(), Some(&layer));
    assert_eq!(again_log, log);
    assert_eq!(
        existing_layer(work.path(), ProcessKind::Python3, code.path()),
        Some(layer.clone())
    );

    let mut spec = t::spec(code.path());
    spec.ro_binds.push((layer.clone(), "/opt".into()));
    let script = "import six; print('six', six.__version__); open('/opt/python/x', 'w')";
    let env = [("PYTHONPATH", "/opt/python")];
    let ran = t::run_env(&s, &spec, None, t::PYTHON, &["-c", script], &env).await;
    assert_eq!(t::lines(&ran.out)["six"], "1.16.0");
    assert!(ran.err.contains("Read-only file system"), "{ran:?}");
}

#[tokio::test]
async fn deps_bad_requirement_fails_with_log_and_leaves_nothing() {
    let Some(s) = t::support() else { return };
    let work = t::dir();
    let code = t::dir();
    fs::write(
        code.path().join("requirements.txt"),
        "this-package-does-not-exist-arcus==0.0.1\n",
    )
    .unwrap();
    let err = build(&config(work.path()), &s, ProcessKind::Python3, code.path())
        .await
        .unwrap_err();
    match err {
        crate::PrepareError::BuildFailed { message, log } => {
            assert!(message.contains("pip install exited"), "{message}");
            assert!(
                log.contains("this-package-does-not-exist-arcus"),
                "pip's message missing from: {log}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(layers(work.path()).is_empty(), "{:?}", layers(work.path()));
}

#[tokio::test]
async fn deps_build_cannot_write_the_code_dir() {
    let Some(s) = t::support() else { return };
    let work = t::dir();
    let code = t::dir();
    // A local "package" whose setup writes into the code dir and the host's /tmp.
    fs::write(code.path().join("requirements.txt"), "./evil\n").unwrap();
    let evil = code.path().join("evil");
    fs::create_dir(&evil).unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    let marker = format!("/tmp/arcus-escape-{}", uuid::Uuid::new_v4().simple());
    fs::write(
        evil.join("setup.py"),
        format!(
            "import os\nfor p in ['/var/task/pwned', {marker:?}]:\n    try:\n        \
             open(p, 'w').write('x')\n    except OSError as e:\n        print('blocked', p, e)\n\
             from setuptools import setup\nsetup(name='evil', version='1.0', py_modules=[])\n"
        ),
    )
    .unwrap();
    let log = match build(&config(work.path()), &s, ProcessKind::Python3, code.path()).await {
        Ok((_, log)) => log,
        Err(crate::PrepareError::BuildFailed { log, .. }) => log,
        Err(e) => panic!("{e}"),
    };
    assert!(
        log.contains("blocked /var/task/pwned"),
        "setup.py did not run: {log}"
    );
    assert!(!code.path().join("pwned").exists());
    assert!(!Path::new(&marker).exists(), "{marker} written on the host");
}

#[tokio::test]
async fn deps_node_layer_builds_with_npm() {
    let Some(s) = t::support() else { return };
    if !Path::new("/usr/bin/npm").exists() {
        eprintln!("SKIPPED: /usr/bin/npm is missing");
        return;
    }
    let work = t::dir();
    let code = t::dir();
    fs::write(
        code.path().join("package.json"),
        r#"{"name":"f","version":"1.0.0","dependencies":{"is-number":"7.0.0"}}"#,
    )
    .unwrap();
    let (layer, log) = build(&config(work.path()), &s, ProcessKind::Node, code.path())
        .await
        .unwrap();
    let layer = layer.unwrap();
    assert!(
        layer
            .join("nodejs/node_modules/is-number/package.json")
            .is_file(),
        "{log}"
    );
    let mut spec = t::spec(code.path());
    spec.ro_binds.push((layer.clone(), "/opt".into()));
    let script = "console.log('isnum', require('is-number')(5))";
    let env = [("NODE_PATH", "/opt/nodejs/node_modules")];
    let ran = t::run_env(&s, &spec, None, "/usr/bin/node", &["-e", script], &env).await;
    assert_eq!(t::lines(&ran.out)["isnum"], "true");

    // With the lockfile npm wrote, the build is a different layer made by `npm ci`.
    let lock = layer.join("nodejs/package-lock.json");
    fs::copy(&lock, code.path().join("package-lock.json")).unwrap();
    let (ci_layer, ci_log) = build(&config(work.path()), &s, ProcessKind::Node, code.path())
        .await
        .unwrap();
    let ci_layer = ci_layer.unwrap();
    assert_ne!(ci_layer, layer);
    assert!(ci_log.starts_with("$ npm ci"), "{ci_log}");
    assert!(
        ci_layer
            .join("nodejs/node_modules/is-number/index.js")
            .is_file(),
        "{ci_log}"
    );
}
