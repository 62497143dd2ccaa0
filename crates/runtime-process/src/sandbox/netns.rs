//! A network namespace per instance, created by the node.
//!
//! Namespaces are per thread: a short-lived thread `unshare`s `CLONE_NEWNET`, brings `lo`
//! up and opens `/proc/thread-self/ns/net`; that descriptor keeps the namespace alive. The
//! node creates listeners *inside* it from a thread that has `setns`'d into it
//! ([`NetNs::bind_tcp`]): a socket stays in the namespace it was created in, so the node's
//! runtime serves it while the sandboxed process (which joins the namespace before exec)
//! reaches it on its own `127.0.0.1`. Nothing of the host's network is visible inside.
//! [`NetNs::start_outbound`] adds user-mode outbound networking with `slirp4netns`
//! (`--disable-host-loopback`, so the host's loopback stays unreachable).

use nix::sched::{CloneFlags, setns, unshare};
use std::fs::File;
use std::io::{self, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// A network namespace with only `lo` (up), optionally with slirp4netns outbound access.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    slirp: Mutex<Option<Slirp>>,
}

/// A running slirp4netns and the pipe whose closing tells it to exit.
#[derive(Debug)]
struct Slirp {
    child: Child,
    _exit_w: OwnedFd,
}

impl NetNs {
    /// Creates a namespace (needs CAP_SYS_ADMIN) with its loopback up.
    pub fn new() -> io::Result<NetNs> {
        let fd = std::thread::scope(|s| {
            s.spawn(|| -> io::Result<OwnedFd> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                loopback_up()?;
                Ok(OwnedFd::from(File::open("/proc/thread-self/ns/net")?))
            })
            .join()
            .map_err(|_| io::Error::other("netns thread panicked"))?
        })?;
        Ok(NetNs {
            fd,
            slirp: Mutex::new(None),
        })
    }

    /// Binds `127.0.0.1:port` (0 = any free port) inside the namespace. The listener is
    /// in blocking mode; set it non-blocking before handing it to tokio.
    pub fn bind_tcp(&self, port: u16) -> io::Result<TcpListener> {
        self.in_ns(|| TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
    }

    /// Runs `f` on a thread that has joined this namespace (sockets it creates stay here).
    pub fn in_ns<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)?;
                f()
            })
            .join()
            .map_err(|_| io::Error::other("netns thread panicked"))?
        })
    }

    /// Starts slirp4netns for user-mode outbound networking (a `tap0` with 10.0.2.100/24,
    /// gateway 10.0.2.2, DNS 10.0.2.3; the host's loopback is not reachable through it) and
    /// waits until it is configured. Idempotent. Blocks for a few milliseconds.
    pub fn start_outbound(&self, slirp4netns: &Path) -> io::Result<()> {
        let mut guard = self
            .slirp
            .lock()
            .map_err(|_| io::Error::other("netns lock poisoned"))?;
        if guard.is_some() {
            return Ok(());
        }
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (exit_r, exit_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let ns_path = format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd());
        let (ready_fd, exit_fd) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
        let mut cmd = Command::new(slirp4netns);
        cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback"])
            .args(["--enable-sandbox", "--enable-seccomp"])
            .arg(format!("--ready-fd={ready_fd}"))
            .arg(format!("--exit-fd={exit_fd}"))
            .args(["--netns-type=path", &ns_path, "tap0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the hook only calls fcntl (async-signal-safe) on descriptors that are
        // open in the child (inherited from this process, owned by this function).
        unsafe {
            cmd.pre_exec(move || {
                clear_cloexec(ready_fd)?;
                clear_cloexec(exit_fd)
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", slirp4netns.display()),
            )
        })?;
        drop((ready_w, exit_r));
        if let Err(e) = wait_ready(&ready_r) {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ = s.read_to_string(&mut stderr);
            }
            return Err(io::Error::other(format!(
                "slirp4netns did not start: {e}: {}",
                stderr.trim()
            )));
        }
        *guard = Some(Slirp {
            child,
            _exit_w: exit_w,
        });
        Ok(())
    }

    /// The namespace's descriptor (for `setns` in a child before exec).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.slirp.lock()
            && let Some(mut slirp) = guard.take()
        {
            let _ = slirp.child.kill();
            let _ = slirp.child.wait();
        }
    }
}

/// Waits (≤ 5 s) for slirp4netns to write to its ready pipe.
fn wait_ready(ready: &OwnedFd) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::from(5000u16))? == 0 {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    let mut byte = [0u8; 1];
    match nix::unistd::read(ready, &mut byte)? {
        1 => Ok(()),
        _ => Err(io::Error::other("exited before it was ready")),
    }
}

/// Clears `FD_CLOEXEC` of `fd`. Async-signal-safe.
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) takes an integer argument and touches no memory.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `IFF_UP` on `lo` of the calling thread's network namespace.
fn loopback_up() -> io::Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the interface named in `req` and writes its flags into
    // `req`, which lives for the whole call; the socket is open.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the union's `ifru_flags` member was just written by SIOCGIFFLAGS.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
