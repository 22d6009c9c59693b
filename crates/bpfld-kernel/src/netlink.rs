//! rtnetlink for XDP: attach / replace / detach a program on an interface
//! with RTM_SETLINK + IFLA_XDP (the attachment belongs to the interface,
//! not to a bpf_link or a process), and read which program each interface
//! has with RTM_GETLINK.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NETLINK_ROUTE: i32 = 0;
const NETLINK_EXT_ACK: i32 = 11;
const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const RTM_SETLINK: u16 = 19;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 1 << 15;
const IFLA_IFNAME: u16 = 3;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_EXPECTED_FD: u16 = 8;

/// `XDP_FLAGS_*` of linux/if_link.h.
pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
pub const XDP_FLAGS_SKB_MODE: u32 = 2;
pub const XDP_FLAGS_DRV_MODE: u32 = 4;
pub const XDP_FLAGS_REPLACE: u32 = 16;

/// An interface's XDP attachment as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkXdp {
    pub ifindex: u32,
    pub name: String,
    /// `XDP_ATTACHED_*`: 0 none, 1 native (drv), 2 skb (generic), 3 hw, 4 multi.
    pub attached: u8,
    /// The program's id (0 when none).
    pub prog_id: u32,
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) returned a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: the option value is a c_int of the size passed. Failure only
    // means no extended ack text, so it is ignored.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            NETLINK_EXT_ACK,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok(fd)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align4(buf.len()), 0);
}

/// nlmsghdr + ifinfomsg for `ifindex`, attributes appended by the caller.
fn header(msg_type: u16, flags: u16, ifindex: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by send()
    buf.extend_from_slice(&msg_type.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&1u32.to_ne_bytes()); // seq
    buf.extend_from_slice(&0u32.to_ne_bytes()); // pid
                                                // struct ifinfomsg { u8 family, pad; u16 type; i32 index; u32 flags, change }
    buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    buf.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf
}

fn send(fd: &OwnedFd, mut msg: Vec<u8>) -> io::Result<()> {
    let len = msg.len() as u32;
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    // SAFETY: msg is a valid buffer of msg.len() bytes; the kernel is the
    // destination (a zeroed sockaddr_nl means the kernel).
    let ret = unsafe {
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            0,
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes of writing.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Attributes (type without the nested/byte-order bits, payload) of `b`.
fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while let (Some(len), Some(kind)) = (u16_at(b, off), u16_at(b, off + 2)) {
        let len = len as usize;
        if len < 4 || off + len > b.len() {
            break;
        }
        out.push((kind & 0x3fff, &b[off + 4..off + len]));
        off += align4(len);
    }
    out
}

/// An error ack: errno plus the kernel's extended-ack text when given.
#[derive(Debug)]
pub struct NetlinkError {
    pub errno: i32,
    pub message: Option<String>,
}

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = io::Error::from_raw_os_error(self.errno).to_string();
        let e = e.split(" (os error").next().unwrap_or(&e).to_string();
        match &self.message {
            Some(m) => write!(f, "{m} ({e})"),
            None => f.write_str(&e),
        }
    }
}

/// Reads the ack of a request; `Err` carries the kernel's errno and text.
fn ack(fd: &OwnedFd) -> Result<(), NetlinkError> {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf).map_err(|e| NetlinkError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            message: None,
        })?;
        let b = &buf[..n];
        let mut off = 0;
        while let (Some(len), Some(kind), Some(flags)) =
            (u32_at(b, off), u16_at(b, off + 4), u16_at(b, off + 6))
        {
            let len = len as usize;
            if len < 16 || off + len > b.len() {
                break;
            }
            let msg = &b[off..off + len];
            if kind == NLMSG_ERROR {
                let errno = u32_at(msg, 16).map_or(0, |e| e as i32);
                if errno == 0 {
                    return Ok(());
                }
                let mut message = None;
                if flags & NLM_F_ACK_TLVS != 0 {
                    // After the error code: the request's header only when
                    // capped, else the whole request.
                    let orig = if flags & NLM_F_CAPPED != 0 {
                        16
                    } else {
                        u32_at(msg, 20).map_or(16, |l| align4(l as usize))
                    };
                    if let Some(tlvs) = msg.get(20 + orig..) {
                        for (k, v) in attrs(tlvs) {
                            if k == NLMSGERR_ATTR_MSG {
                                let text = v.split(|&c| c == 0).next().unwrap_or(v);
                                message = Some(String::from_utf8_lossy(text).into_owned());
                            }
                        }
                    }
                }
                return Err(NetlinkError {
                    errno: -errno,
                    message,
                });
            }
            off += align4(len);
        }
    }
}

/// Sets the XDP program of `ifindex`: `fd` -1 detaches; with
/// [`XDP_FLAGS_REPLACE`], `expected` is the program that must be attached
/// now (the swap is atomic: no packet sees the interface without one).
pub fn set_xdp(
    ifindex: u32,
    fd: RawFd,
    expected: Option<RawFd>,
    flags: u32,
) -> Result<(), NetlinkError> {
    let sock = socket().map_err(|e| NetlinkError {
        errno: e.raw_os_error().unwrap_or(libc::EIO),
        message: None,
    })?;
    let mut msg = header(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, ifindex);
    let mut nested = Vec::new();
    push_attr(&mut nested, IFLA_XDP_FD, &fd.to_ne_bytes());
    if flags != 0 {
        push_attr(&mut nested, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    }
    if let Some(e) = expected {
        push_attr(&mut nested, IFLA_XDP_EXPECTED_FD, &e.to_ne_bytes());
    }
    push_attr(&mut msg, IFLA_XDP | NLA_F_NESTED, &nested);
    send(&sock, msg).map_err(|e| NetlinkError {
        errno: e.raw_os_error().unwrap_or(libc::EIO),
        message: None,
    })?;
    ack(&sock)
}

/// Every interface of the current network namespace with its XDP state.
pub fn links() -> io::Result<Vec<LinkXdp>> {
    let sock = socket()?;
    send(&sock, header(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 0))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = recv(sock.as_raw_fd(), &mut buf)?;
        let b = &buf[..n];
        let mut off = 0;
        while let (Some(len), Some(kind)) = (u32_at(b, off), u16_at(b, off + 4)) {
            let len = len as usize;
            if len < 16 || off + len > b.len() {
                break;
            }
            let msg = &b[off..off + len];
            match kind {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let errno = u32_at(msg, 16).map_or(libc::EIO, |e| -(e as i32));
                    return Err(io::Error::from_raw_os_error(errno));
                }
                RTM_NEWLINK => {
                    let ifindex = u32_at(msg, 20).unwrap_or(0);
                    let mut link = LinkXdp {
                        ifindex,
                        name: String::new(),
                        attached: 0,
                        prog_id: 0,
                    };
                    for (k, v) in attrs(msg.get(32..).unwrap_or(&[])) {
                        match k {
                            IFLA_IFNAME => {
                                let text = v.split(|&c| c == 0).next().unwrap_or(v);
                                link.name = String::from_utf8_lossy(text).into_owned();
                            }
                            IFLA_XDP => {
                                for (xk, xv) in attrs(v) {
                                    match xk {
                                        IFLA_XDP_ATTACHED => {
                                            link.attached = xv.first().copied().unwrap_or(0)
                                        }
                                        IFLA_XDP_PROG_ID => {
                                            link.prog_id = u32_at(xv, 0).unwrap_or(0)
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    out.push(link);
                }
                _ => {}
            }
            off += align4(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_stop_at_truncated_or_short_entries() {
        let mut b = Vec::new();
        push_attr(&mut b, IFLA_IFNAME, b"veth0\0");
        push_attr(&mut b, IFLA_XDP | NLA_F_NESTED, &[1, 2, 3, 4]);
        // A length running past the end, then garbage.
        b.extend_from_slice(&[0xff, 0x00, 0x01, 0x00, 9]);
        let a = attrs(&b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (IFLA_IFNAME, &b"veth0\0"[..]));
        assert_eq!(a[1], (IFLA_XDP, &[1u8, 2, 3, 4][..]));
        // A zero length does not loop.
        assert!(attrs(&[0, 0, 1, 0]).is_empty());
        assert!(attrs(&[]).is_empty());
    }
}
