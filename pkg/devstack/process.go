package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a long-running program of the stack. It is started detached
// (its own session, output to its log file) and remembered by a PID file, so
// that any later invocation finds it, and stops exactly it, by PID.
type process struct {
	name    string
	binary  string
	args    []string
	env     []string
	logFile string
	pidFile string
	// ports the process listens on; checked free before start so that a
	// conflict is reported by name instead of as a crash in the log.
	ports []string
	// netns is the network namespace the process runs in (a node's), ""
	// for the host's. Its ports are checked there.
	netns string
	// dir is the working directory ("" for this program's).
	dir string
	// asUser, when set, runs the process as that user of /etc/passwd in
	// a user namespace of its own whose only uid and gid map to root's:
	// see asUserAttrs.
	asUser *passwdUser
}

// passwdUser is a user of the host's /etc/passwd.
type passwdUser struct {
	name     string
	uid, gid int
}

// asUserAttrs let a program that refuses to run as root (PostgreSQL) run
// as u on files that root owns: in a user namespace whose uid u.uid and
// gid u.gid are root's outside, the program is u, and the files it
// writes are root's. So its data stays in the state directory, which may
// lie under /root (0700), where u itself could not go. It has no
// capability outside its namespace.
func asUserAttrs(attrs *syscall.SysProcAttr, u *passwdUser) {
	attrs.Cloneflags |= syscall.CLONE_NEWUSER
	attrs.UidMappings = []syscall.SysProcIDMap{{ContainerID: u.uid, HostID: 0, Size: 1}}
	attrs.GidMappings = []syscall.SysProcIDMap{{ContainerID: u.gid, HostID: 0, Size: 1}}
}

func (c Config) newProcess(name, binary string, args ...string) *process {
	return &process{
		name:    name,
		binary:  binary,
		args:    args,
		logFile: c.LogFile(name),
		pidFile: c.Path("run", name+".pid"),
	}
}

// pid returns the PID of the running process, or 0.
func (p *process) pid() int {
	data, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || !processRuns(pid, p.startedBinary()) {
		return 0
	}
	return pid
}

// startedBinary is the binary the running process was started from, as
// its command file records it: a process started from another binary
// than today's (a build whose cache key changed) is still this process,
// to be stopped before its successor starts, never left running beside
// it.
func (p *process) startedBinary() string {
	data, err := os.ReadFile(p.commandFile())
	if err != nil {
		return p.binary
	}
	if binary, _, _ := strings.Cut(string(data), "\x00"); binary != "" {
		return binary
	}
	return p.binary
}

// running reports whether the process is alive.
func (p *process) running() bool { return p.pid() != 0 }

// start starts the process unless it already runs with the same command
// line; one running with another command line is restarted.
func (p *process) start() error {
	if p.running() {
		if p.sameCommand() {
			return nil
		}
		if err := p.stop(20 * time.Second); err != nil {
			return err
		}
	}
	for _, addr := range p.ports {
		if err := inNetNS(p.netns, func() error { return portFreeSoon(addr) }); err != nil {
			return componentErr(p.name, p.logFile, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.logFile), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.pidFile), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n=== %s starting %s %s\n", time.Now().Format(time.RFC3339), p.binary, strings.Join(p.args, " "))
	cmd := exec.Command(p.binary, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if p.asUser != nil {
		asUserAttrs(cmd.SysProcAttr, p.asUser)
	}
	if err := inNetNS(p.netns, cmd.Start); err != nil {
		return componentErr(p.name, p.logFile, fmt.Errorf("start %s: %w", p.binary, err))
	}
	if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(p.commandFile(), []byte(p.commandLine()), 0o644); err != nil {
		return err
	}
	// Reap the child if it exits while this program still runs.
	go func() { _ = cmd.Wait() }()
	return nil
}

func (p *process) commandFile() string { return strings.TrimSuffix(p.pidFile, ".pid") + ".cmdline" }

func (p *process) commandLine() string {
	return strings.Join(append(append([]string{p.binary}, p.args...), p.env...), "\x00")
}

func (p *process) sameCommand() bool {
	data, err := os.ReadFile(p.commandFile())
	return err == nil && string(data) == p.commandLine()
}

// stop ends the process by PID: SIGTERM, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	pid := p.pid()
	if pid == 0 {
		_ = os.Remove(p.pidFile)
		return nil
	}
	if err := killAndWait(pid, p.startedBinary(), grace); err != nil {
		return componentErr(p.name, p.logFile, err)
	}
	return os.Remove(p.pidFile)
}

func killAndWait(pid int, binary string, grace time.Duration) error {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !processRuns(pid, binary) {
			waitExited(pid)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50; i++ {
		if !processRuns(pid, binary) {
			waitExited(pid)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("process %d did not exit after SIGKILL", pid)
}

// waitExited waits (5 s at most) until pid has closed its files: gone, or
// a zombie with no thread left. A process loses its executable (processRuns
// says no) early in its exit, before it closes its files; and a Go
// program's main thread turns zombie while its other threads still exit
// and hold the file table they share, listening sockets included. A
// successor started at either moment found the port still bound
// ("address already in use": the Results API restarted for the S3 test).
func waitExited(pid int) {
	for i := 0; i < 100 && !filesClosed("/proc", pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// filesClosed reports whether process pid (under procfs root proc) is gone,
// or a zombie whose every thread has exited: only then are its files closed.
func filesClosed(proc string, pid int) bool {
	dir := filepath.Join(proc, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i <= 0 || len(stat) <= i+2 || (stat[i+2] != 'Z' && stat[i+2] != 'X') {
		return false
	}
	threads, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return true
	}
	// The zombie leader stays listed until it is reaped; any other entry
	// is a thread still exiting.
	return len(threads) <= 1
}

// startTime is when the running process was started (its PID file's time).
func (p *process) startTime() (time.Time, error) {
	st, err := os.Stat(p.pidFile)
	if err != nil {
		return time.Time{}, componentErr(p.name, p.logFile, err)
	}
	return st.ModTime(), nil
}

// rssBytes is the resident memory of the process, 0 if it does not run.
func (p *process) rssBytes() int64 {
	pid := p.pid()
	if pid == 0 {
		return 0
	}
	return processRSS(pid)
}

func processRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// processRuns reports whether pid is a live (not zombie) process running
// binary. Comparing the executable guards against PID reuse.
func processRuns(pid int, binary string) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	want, err := filepath.EvalSymlinks(binary)
	if err != nil {
		want = binary
	}
	return exe == want || filepath.Base(exe) == filepath.Base(want)
}

// portFreeSoon fails when something still listens on addr after 3 s: a
// predecessor that was just stopped may hold it a moment longer than its
// process state says (a zombie leader's threads still closing its files;
// see waitExited), and is not a conflict.
func portFreeSoon(addr string) error {
	err := portFree(addr)
	for deadline := time.Now().Add(3 * time.Second); err != nil && time.Now().Before(deadline); err = portFree(addr) {
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// portFree fails when something already listens on addr.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("port %s is in use: %w", addr, err)
	}
	return l.Close()
}

// waitFor polls check until it succeeds, the context ends, or the process
// dies (which ends the wait at once with the process's log named).
func (p *process) waitFor(ctx context.Context, timeout time.Duration, what string, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p != nil && !p.running() {
			return componentErr(p.name, p.logFile, fmt.Errorf("exited while waiting for %s", what))
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			name, logFile := "stack", ""
			if p != nil {
				name, logFile = p.name, p.logFile
			}
			return componentErr(name, logFile, fmt.Errorf("not %s after %s: %w", what, timeout, errors.Join(last, ctx.Err())))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
