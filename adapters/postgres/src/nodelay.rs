//! `TCP_NODELAY` on the central's connections, which sqlx 0.9 does not set.
//!
//! Why it matters: over TLS, sqlx hands rustls a whole message and then
//! writes the TLS records to the socket one `write` each (its socket wrapper
//! has no vectored write), so any message larger than one 16 KiB record
//! leaves in several writes. With Nagle's algorithm on, the kernel holds the
//! second write until the server acknowledges the first, and the server,
//! which answers nothing before it has the whole message, acknowledges only
//! when its delayed-ACK timer fires (~40 ms). Every push statement carries
//! a batch's arrays, far above 16 KiB: `strace` showed a 44-56 ms gap after
//! each, and 100k pushed rows took 3.2 s with TLS against 2.0 s without
//! (benches/README.md, "TLS and Nagle"). Cutting statements below 16 KiB
//! instead was measured 3.5x slower still (a stall per statement remains
//! for anything larger, and on a slow link each extra statement costs a
//! round trip), so the socket option is the fix. sqlx sets it upstream
//! (launchbadge/sqlx#4336), in no release yet.
//!
//! How, with no unsafe code: sqlx gives no access to its socket, but every
//! connection is a socket of this process. After each connect, [`apply`]
//! looks through `/proc/self/fd` for TCP sockets connected to the central's
//! port, takes a duplicate of each with `pidfd_getfd` on this very process
//! (the duplicate shares the socket, so the option set on it holds for
//! sqlx's descriptor) and sets `TCP_NODELAY`. Setting it twice, or on
//! another connection of ours to the same port, is harmless: the option
//! only changes when small segments leave, never what is sent.
//!
//! Where it cannot be done (not Linux, a kernel before 5.6, a seccomp
//! filter that refuses `pidfd_getfd`), connections work as before, with
//! Nagle; the first failure is logged once.

use std::sync::atomic::{AtomicBool, Ordering};

/// Logged once per process when the option cannot be set.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Set `TCP_NODELAY` on every TCP socket of this process whose peer port is
/// `port`; how many sockets were changed.
pub fn apply(port: u16) -> usize {
    match imp::apply(port) {
        Ok(n) => n,
        Err(e) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    "cannot set TCP_NODELAY on the PostgreSQL connections ({e}); \
                     large push statements may wait for delayed ACKs"
                );
            }
            0
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::net::SocketAddr;

    use rustix::net::sockopt;
    use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};

    pub fn apply(port: u16) -> std::io::Result<usize> {
        let pidfd = pidfd_open(getpid(), PidfdFlags::empty())?;
        let mut changed = 0;
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let entry = entry?;
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            // Only sockets; the link is `socket:[<inode>]`.
            let is_socket = std::fs::read_link(entry.path())
                .map(|l| l.to_string_lossy().starts_with("socket:"))
                .unwrap_or(false);
            if !is_socket {
                continue;
            }
            // Closed since the listing: nothing to do.
            let Ok(dup) = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) else {
                continue;
            };
            let peer = match rustix::net::getpeername(&dup) {
                Ok(Some(addr)) => SocketAddr::try_from(addr).ok(),
                _ => None,
            };
            if peer.is_none_or(|p| p.port() != port) {
                continue;
            }
            if sockopt::tcp_nodelay(&dup) == Ok(false) {
                sockopt::set_tcp_nodelay(&dup, true)?;
                changed += 1;
            }
        }
        Ok(changed)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn apply(_port: u16) -> std::io::Result<usize> {
        Err(std::io::Error::other("only done on Linux"))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use rustix::net::sockopt;

    #[test]
    fn sets_nodelay_on_sockets_to_the_port_and_leaves_others() {
        let a = TcpListener::bind("127.0.0.1:0").expect("bind");
        let b = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port_a = a.local_addr().expect("addr").port();
        let to_a = TcpStream::connect(("127.0.0.1", port_a)).expect("connect a");
        let to_b = TcpStream::connect(b.local_addr().expect("addr")).expect("connect b");
        assert!(!to_a.nodelay().expect("nodelay"));
        assert!(super::apply(port_a) >= 1);
        assert!(to_a.nodelay().expect("nodelay a"));
        assert!(!to_b.nodelay().expect("nodelay b"));
        // The accepted side's peer port is to_a's local port, not port_a.
        let (accepted, _) = a.accept().expect("accept");
        assert!(!sockopt::tcp_nodelay(&accepted).expect("accepted"));
        // Again: nothing left to change.
        assert_eq!(super::apply(port_a), 0);
    }
}
