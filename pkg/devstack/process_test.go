package devstack

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := DefaultConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	return cfg
}

func TestProcessStartFailuresNameComponentAndLog(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name     string
		binary   string
		ports    []string
		wantText string
	}{
		{name: "port in use", binary: "/bin/sleep", ports: []string{busy.Addr().String()}, wantText: "port " + busy.Addr().String() + " is in use"},
		{name: "missing binary", binary: "/nonexistent/kube-apiserver", wantText: "start /nonexistent/kube-apiserver"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			p := cfg.newProcess("component-x", tc.binary, "60")
			p.ports = tc.ports
			err := p.start()
			var cerr *ComponentError
			if !errors.As(err, &cerr) {
				t.Fatalf("start() = %v, want a ComponentError", err)
			}
			if cerr.Component != "component-x" || cerr.LogFile != cfg.LogFile("component-x") {
				t.Errorf("error names %q / %q, want component-x / %s", cerr.Component, cerr.LogFile, cfg.LogFile("component-x"))
			}
			if !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), cfg.LogFile("component-x")) {
				t.Errorf("error %q does not say %q and the log file", err, tc.wantText)
			}
			if p.running() {
				t.Error("process reported running after a failed start")
			}
		})
	}
}

func TestWaitForReportsAComponentThatExits(t *testing.T) {
	cfg := testConfig(t)
	p := cfg.newProcess("dies", "/bin/false")
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	err := p.waitFor(context.Background(), 10*time.Second, "ready", func(context.Context) error { return errors.New("not yet") })
	if err == nil || !strings.Contains(err.Error(), "dies: exited while waiting for ready") || !strings.Contains(err.Error(), cfg.LogFile("dies")) {
		t.Fatalf("waitFor() = %v, want the component's exit and log named", err)
	}
}

func TestWaitForTimesOutWithLastError(t *testing.T) {
	cfg := testConfig(t)
	p := cfg.newProcess("slow", "/bin/sleep", "30")
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.stop(time.Second) }()
	err := p.waitFor(context.Background(), 600*time.Millisecond, "ready", func(context.Context) error { return errors.New("connection refused") })
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "slow: not ready") {
		t.Fatalf("waitFor() = %v", err)
	}
}

func TestStartIsIdempotentAndStopEndsThePID(t *testing.T) {
	cfg := testConfig(t)
	p := cfg.newProcess("sleeper", "/bin/sleep", "60")
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	pid := p.pid()
	if pid == 0 {
		t.Fatal("not running after start")
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	if again := p.pid(); again != pid {
		t.Fatalf("second start replaced pid %d with %d", pid, again)
	}
	if rss := p.rssBytes(); rss <= 0 {
		t.Errorf("rss = %d, want > 0", rss)
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if processRuns(pid, "/bin/sleep") {
		t.Errorf("pid %d still runs after stop", pid)
	}
	if _, err := os.Stat(p.pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

func TestStalePIDFileIsNotRunning(t *testing.T) {
	cfg := testConfig(t)
	p := cfg.newProcess("ghost", "/bin/sleep")
	// Our own PID runs, but not /bin/sleep: PID reuse must not count.
	if err := writeFile(p.pidFile, strconv.Itoa(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	if p.running() {
		t.Error("a PID file naming another program counts as running")
	}
}

// TestProcessFromAnotherBinaryIsStoppedBeforeItsSuccessor: a component
// whose binary moved (a build whose cache key changed) must not leave the
// process started from the old binary running beside the new one.
func TestProcessFromAnotherBinaryIsStoppedBeforeItsSuccessor(t *testing.T) {
	cfg := testConfig(t)
	dir := t.TempDir()
	oldBinary, newBinary := dir+"/old-agent", dir+"/new-agent"
	for _, b := range []string{oldBinary, newBinary} {
		data, err := os.ReadFile("/bin/sleep")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(b, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := cfg.newProcess("agent", oldBinary, "60")
	if err := old.start(); err != nil {
		t.Fatal(err)
	}
	oldPID := old.pid()
	t.Cleanup(func() { _ = old.stop(time.Second) })

	successor := cfg.newProcess("agent", newBinary, "60")
	if got := successor.pid(); got != oldPID {
		t.Fatalf("the successor sees pid %d, want the old process %d", got, oldPID)
	}
	if err := successor.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = successor.stop(time.Second) })
	if processRuns(oldPID, oldBinary) {
		t.Errorf("the process started from %s still runs beside its successor", oldBinary)
	}
	if pid := successor.pid(); pid == 0 || pid == oldPID {
		t.Errorf("successor pid %d (old %d)", pid, oldPID)
	}
}

// A postmaster.pid naming a PID that is no postgres (gone, a zombie, or
// reused by another program) is removed, so that PostgreSQL starts.
func TestClearPostmasterLockRemovesStaleLock(t *testing.T) {
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.postgresDataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	lock := cfg.postgresDataDir() + "/postmaster.pid"
	for _, pid := range []int{os.Getpid(), 1 << 22} {
		content := strconv.Itoa(pid) + "\n" + cfg.postgresDataDir() + "\n1796444409\n15432\n"
		if err := os.WriteFile(lock, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := cfg.clearPostmasterLock(); err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		if _, err := os.Stat(lock); !os.IsNotExist(err) {
			t.Errorf("pid %d: postmaster.pid still there (%v)", pid, err)
		}
	}
	if err := cfg.clearPostmasterLock(); err != nil {
		t.Errorf("no lock file: %v", err)
	}
}

func TestFilesClosed(t *testing.T) {
	cases := []struct {
		name    string
		state   string // "" : no /proc/PID
		threads int
		want    bool
	}{
		{name: "gone", want: true},
		{name: "running", state: "S", threads: 5, want: false},
		{name: "zombie leader, threads still exiting", state: "Z", threads: 3, want: false},
		{name: "zombie, every thread gone", state: "Z", threads: 1, want: true},
		{name: "dead", state: "X", threads: 0, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proc := t.TempDir()
			if tc.state != "" {
				dir := proc + "/42"
				for i := 0; i < tc.threads; i++ {
					if err := os.MkdirAll(dir+"/task/"+strconv.Itoa(42+i), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				stat := "42 (api server) " + tc.state + " 1 42 42 0"
				if err := os.WriteFile(dir+"/stat", []byte(stat), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := filesClosed(proc, 42); got != tc.want {
				t.Errorf("filesClosed = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStoppedListenerFreesItsPort stops a multi-threaded listener (a Go
// program: this test binary as a helper) and starts at once what needs its
// port, as SetResultsLogs does with the Results API. The port must be free
// when stop returns.
func TestStoppedListenerFreesItsPort(t *testing.T) {
	if addr := os.Getenv("DEVSTACK_TEST_LISTEN"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(3)
		}
		defer l.Close()
		// Busy threads, as a server's under load: they are the ones
		// still exiting after the main thread.
		for i := 0; i < 8; i++ {
			go func() {
				for n := 0; ; n++ {
					_ = strconv.Itoa(n)
				}
			}()
		}
		select {}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		free, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := free.Addr().String()
		free.Close()
		cfg := testConfig(t)
		p := cfg.newProcess("listener", self, "-test.run=^TestStoppedListenerFreesItsPort$")
		p.env = []string{"DEVSTACK_TEST_LISTEN=" + addr}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		if err := p.waitFor(context.Background(), 10*time.Second, "listening", func(context.Context) error {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := p.stop(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := portFree(addr); err != nil {
			t.Fatalf("run %d: right after stop: %v", i, err)
		}
	}
}
