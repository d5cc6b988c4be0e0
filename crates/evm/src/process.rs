//! Child processes that do not outlive their parent: anvil under the demo and the tests, and
//! the demo's node processes.

use std::process::Command;

/// Makes the child that `cmd` starts receive SIGTERM when the thread that starts it ends, on
/// Linux (`PR_SET_PDEATHSIG`), even if the process is killed with SIGKILL, which runs no
/// `Drop`. Start it from a thread that lives as long as the child should (a `block_on` future
/// or a test's thread, not a pool's worker, which may end when idle). Elsewhere a no-op.
pub fn stop_with_spawning_thread(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid) and
        // errors built from an errno, which allocate nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died before the line above: nobody would stop this child.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}
