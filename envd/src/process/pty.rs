//! Pseudo-terminals for `Start` with a `pty` field.
//!
//! The master side is non-blocking and driven by tokio's reactor (`AsyncFd`), so
//! a PTY costs no thread. Reading EIO from the master means every slave fd was
//! closed, i.e. the terminal's processes are gone: that is end-of-file.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::proto::PtySize;

pub struct Master {
    fd: AsyncFd<OwnedFd>,
}

/// Opens a PTY pair of the given size; the master is non-blocking, both are close-on-exec
/// (the slave reaches the child only through the dup2 of its stdio).
pub fn open(size: PtySize) -> io::Result<(Master, OwnedFd)> {
    let ws = winsize(size);
    let pair = nix::pty::openpty(Some(&ws), None).map_err(io::Error::from)?;
    for fd in [&pair.master, &pair.slave] {
        set_cloexec(fd.as_raw_fd())?;
    }
    // SAFETY: fcntl on a descriptor we own; only flips O_NONBLOCK.
    unsafe {
        let flags = libc::fcntl(pair.master.as_raw_fd(), libc::F_GETFL);
        if flags < 0
            || libc::fcntl(
                pair.master.as_raw_fd(),
                libc::F_SETFL,
                flags | libc::O_NONBLOCK,
            ) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: an OwnedFd always returns the same open descriptor until dropped.
    let fd = unsafe { AsyncFd::register(pair.master) }.map_err(io::Error::from)?;
    Ok((Master { fd }, pair.slave))
}

fn set_cloexec(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; only sets FD_CLOEXEC.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn winsize(size: PtySize) -> nix::pty::Winsize {
    nix::pty::Winsize {
        ws_row: size.rows.clamp(1, u16::MAX as u32) as u16,
        ws_col: size.cols.clamp(1, u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Master {
    /// Reads some output; `Ok(0)` at end-of-file (including the EIO a hung-up PTY gives).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let res = guard.try_io(|fd| {
                // SAFETY: reading into a valid, exclusively borrowed buffer.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data` (terminal input).
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            let res = guard.try_io(|fd| {
                // SAFETY: writing from a valid slice.
                let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Changes the terminal size (the kernel sends SIGWINCH to the foreground group).
    pub fn resize(&self, size: PtySize) -> io::Result<()> {
        let ws = winsize(size);
        // SAFETY: TIOCSWINSZ reads a winsize struct we own.
        if unsafe { libc::ioctl(self.fd.get_ref().as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
