package framework

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// failureLogLines is how many of the controller's log lines about a
// tenant a failed test prints.
const failureLogLines = 60

// logControllerOnFailure prints, when the test failed, the controller's
// last log lines about the workspace: CI keeps the test output only, and
// the stack's logs go with the machine.
func (e *Env) logControllerOnFailure(t testing.TB, workspace string) {
	t.Cleanup(func() {
		if !t.Failed() || !e.hostController() {
			return
		}
		lines, err := tail(e.Stack.Config().LogFile("controller"), workspace, failureLogLines)
		if err != nil {
			t.Logf("controller log: %v", err)
			return
		}
		t.Logf("the controller's last %d log lines about workspace %s:\n%s", len(lines), workspace, strings.Join(lines, "\n"))
	})
}

// tail returns the last n lines of the file that contain s.
func tail(path, s string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		if line := scanner.Text(); strings.Contains(line, s) {
			lines = append(lines, line)
			if len(lines) > n {
				lines = lines[1:]
			}
		}
	}
	return lines, scanner.Err()
}
