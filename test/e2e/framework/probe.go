package framework

import "strings"

// ProbeScript is a shell script that prints "open <host>:<port>" or
// "closed <host>:<port>" for each "<host> <port>" target: closed when the
// connection was refused or timed out, open when it was made (a server
// that then waits for a TLS hello is cut short by timeout, and still
// counts as open). The targets are probed side by side: a dropped
// connection takes the whole 4 s timeout, and one after the other the 76
// of the isolation test took a minute.
func ProbeScript(targets []string) string {
	return `probe() {
  out=$(timeout 6 nc -w 4 "$1" "$2" </dev/null 2>&1)
  case "$out" in
    *"can't connect"*|*"timed out"*) echo "closed $1:$2" ;;
    *) echo "open $1:$2" ;;
  esac
}
printf '%s\n' ` + quoteAll(targets) + ` | { while read -r host port; do probe "$host" "$port" & done; wait; }
`
}

// ProbeReport reads a ProbeScript's output: "open" or "closed" by
// "<host>:<port>"; other lines ("<check> <what it read>") by their first
// word.
func ProbeReport(out string) map[string]string {
	report := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		first, rest, _ := strings.Cut(line, " ")
		if first == "open" || first == "closed" {
			report[rest] = first
		} else {
			report[first] = rest
		}
	}
	return report
}

func quoteAll(lines []string) string {
	quoted := make([]string, len(lines))
	for i, l := range lines {
		quoted[i] = "'" + l + "'"
	}
	return strings.Join(quoted, " ")
}
