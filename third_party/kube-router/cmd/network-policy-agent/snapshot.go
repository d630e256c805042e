package main

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/utils"
)

// snapshotReads answers kube-router's reads of the node's filter table
// (does a chain exist, does a rule exist, list a chain, list the chains)
// from one iptables-save per sync; every write goes to the real handler
// and drops the snapshot, so the next read saves again.
//
// Why: each full sync begins by checking kube-router's top-level chains,
// the jumps to them and its default chain (ensureTopLevelChains,
// ensureDefaultNetworkPolicyChain), then lists the chains to clean up:
// 18 iptables commands per sync (measured: 144 for 8 syncs), each of
// which reads the whole ruleset with iptables-nft, so a command costs as
// much as an iptables-save. The checks are the same: every sync still
// verifies every jump and its position, against the table as it is when
// the sync begins, as kube-router's commands read it a few milliseconds
// apart.
//
// A rule is found in the snapshot only when it prints exactly as
// iptables-save prints the kernel's rule (the IP header options first,
// comments quoted as iptables quotes them), which is then the same rule;
// a rule written otherwise (kube-router writes its default chain's MARK
// with the target before the comment) is asked of iptables, as before.
type snapshotReads struct {
	utils.IPTablesHandler
	// save writes iptables-save of the filter table into the buffer.
	save func(buf *bytes.Buffer) error
	// generation changes when a sync ends: a snapshot serves one sync.
	generation func() uint64
	// maxAge bounds a snapshot's life however long a sync takes.
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	table   *filterTable
	takenAt time.Time
	takenIn uint64
}

const filter = "filter"

// snapshotMaxAge bounds a snapshot's life within one sync. A sync reads
// twice: the checks at its start, and the list of chains to clean up
// (cleanupStaleRules) after it has written its policies and pods into
// kube-router's own buffer and restored its ipsets, which on a loaded node
// takes seconds. The list may come from the sync's snapshot: the chains
// it lists are kube-router's, which only this sync writes, and a write
// through the handler drops the snapshot anyway.
const snapshotMaxAge = 10 * time.Second

func newSnapshotReads(h utils.IPTablesHandler, save func(*bytes.Buffer) error, generation func() uint64) *snapshotReads {
	return &snapshotReads{IPTablesHandler: h, save: save, generation: generation, maxAge: snapshotMaxAge, now: time.Now}
}

// snapshot is the filter table as saved during this sync, saving it if
// there is none; nil if iptables-save failed (the caller asks iptables).
func (s *snapshotReads) snapshot() *filterTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen, now := s.generation(), s.now()
	if s.table != nil && gen == s.takenIn && now.Sub(s.takenAt) < s.maxAge {
		return s.table
	}
	var buf bytes.Buffer
	if err := s.save(&buf); err != nil {
		s.table = nil
		return nil
	}
	s.table, s.takenAt, s.takenIn = parseFilterTable(buf.String()), now, gen
	return s.table
}

func (s *snapshotReads) drop() {
	s.mu.Lock()
	s.table = nil
	s.mu.Unlock()
}

func (s *snapshotReads) ChainExists(table, chain string) (bool, error) {
	if table == filter {
		if t := s.snapshot(); t != nil && t.hasChain(chain) {
			return true, nil
		}
	}
	return s.IPTablesHandler.ChainExists(table, chain)
}

func (s *snapshotReads) Exists(table, chain string, rulespec ...string) (bool, error) {
	if s.foundInSnapshot(table, chain, rulespec) {
		return true, nil
	}
	return s.IPTablesHandler.Exists(table, chain, rulespec...)
}

func (s *snapshotReads) foundInSnapshot(table, chain string, rulespec []string) bool {
	if table != filter {
		return false
	}
	line, ok := savedForm(chain, rulespec)
	if !ok {
		return false
	}
	t := s.snapshot()
	return t != nil && t.hasRule(chain, line)
}

// List is `iptables -S chain`: the chain's policy (-P) or creation (-N)
// line, then its rules.
func (s *snapshotReads) List(table, chain string) ([]string, error) {
	if table == filter {
		if t := s.snapshot(); t != nil && t.hasChain(chain) {
			return t.list(chain), nil
		}
	}
	return s.IPTablesHandler.List(table, chain)
}

func (s *snapshotReads) ListChains(table string) ([]string, error) {
	if table == filter {
		if t := s.snapshot(); t != nil {
			return append([]string(nil), t.order...), nil
		}
	}
	return s.IPTablesHandler.ListChains(table)
}

// AppendUnique is go-iptables' (a check, then an append if the rule is
// missing) with the check from the snapshot when it can answer. Only an
// append drops the snapshot: kube-router's MARK rule, which the snapshot
// cannot find, is checked by iptables at every sync, and counting that
// check as a write made every sync save the table a third time for its
// list of chains to clean up.
func (s *snapshotReads) AppendUnique(table, chain string, rulespec ...string) error {
	if s.foundInSnapshot(table, chain, rulespec) {
		return nil
	}
	exists, err := s.IPTablesHandler.Exists(table, chain, rulespec...)
	if err != nil || exists {
		return err
	}
	return s.Append(table, chain, rulespec...)
}

// The writes: each drops the snapshot.

func (s *snapshotReads) Insert(table, chain string, pos int, rulespec ...string) error {
	defer s.drop()
	return s.IPTablesHandler.Insert(table, chain, pos, rulespec...)
}

func (s *snapshotReads) Append(table, chain string, rulespec ...string) error {
	defer s.drop()
	return s.IPTablesHandler.Append(table, chain, rulespec...)
}

func (s *snapshotReads) Delete(table, chain string, rulespec ...string) error {
	defer s.drop()
	return s.IPTablesHandler.Delete(table, chain, rulespec...)
}

func (s *snapshotReads) DeleteIfExists(table, chain string, rulespec ...string) error {
	defer s.drop()
	return s.IPTablesHandler.DeleteIfExists(table, chain, rulespec...)
}

func (s *snapshotReads) NewChain(table, chain string) error {
	defer s.drop()
	return s.IPTablesHandler.NewChain(table, chain)
}

func (s *snapshotReads) ClearChain(table, chain string) error {
	defer s.drop()
	return s.IPTablesHandler.ClearChain(table, chain)
}

func (s *snapshotReads) RenameChain(table, oldChain, newChain string) error {
	defer s.drop()
	return s.IPTablesHandler.RenameChain(table, oldChain, newChain)
}

func (s *snapshotReads) DeleteChain(table, chain string) error {
	defer s.drop()
	return s.IPTablesHandler.DeleteChain(table, chain)
}

func (s *snapshotReads) ClearAndDeleteChain(table, chain string) error {
	defer s.drop()
	return s.IPTablesHandler.ClearAndDeleteChain(table, chain)
}

func (s *snapshotReads) ClearAll() error {
	defer s.drop()
	return s.IPTablesHandler.ClearAll()
}

func (s *snapshotReads) DeleteAll() error {
	defer s.drop()
	return s.IPTablesHandler.DeleteAll()
}

func (s *snapshotReads) ChangePolicy(table, chain, target string) error {
	defer s.drop()
	return s.IPTablesHandler.ChangePolicy(table, chain, target)
}

// filterTable is one iptables-save of the filter table.
type filterTable struct {
	// order is the chains as saved: the built-in ones, then the others.
	order []string
	// head is a chain's `iptables -S` first line: -P for a built-in
	// chain, -N for the others.
	head  map[string]string
	rules map[string][]string
}

func parseFilterTable(saved string) *filterTable {
	t := &filterTable{head: map[string]string{}, rules: map[string][]string{}}
	for _, line := range strings.Split(saved, "\n") {
		switch {
		case strings.HasPrefix(line, ":"):
			// ":INPUT ACCEPT [0:0]" or ":KUBE-ROUTER-INPUT - [0:0]"
			fields := strings.Fields(line[1:])
			if len(fields) < 2 {
				continue
			}
			name := fields[0]
			t.order = append(t.order, name)
			if fields[1] == "-" {
				t.head[name] = "-N " + name
			} else {
				t.head[name] = "-P " + name + " " + fields[1]
			}
		case strings.HasPrefix(line, "-A "):
			fields := strings.SplitN(line, " ", 3)
			if len(fields) >= 2 {
				t.rules[fields[1]] = append(t.rules[fields[1]], line)
			}
		}
	}
	return t
}

func (t *filterTable) hasChain(chain string) bool {
	_, ok := t.head[chain]
	return ok
}

func (t *filterTable) hasRule(chain, line string) bool {
	for _, r := range t.rules[chain] {
		if r == line {
			return true
		}
	}
	return false
}

func (t *filterTable) list(chain string) []string {
	return append([]string{t.head[chain]}, t.rules[chain]...)
}

// headerOptions are the options iptables prints before every match, in
// the order it prints them.
var headerOptions = []string{"-s", "-d", "-i", "-o", "-p"}

// savedForm is the line iptables-save prints for the rule, and false when
// the rule has something this does not know how iptables prints: then it
// is not looked for in the snapshot.
func savedForm(chain string, rulespec []string) (string, bool) {
	header := map[string][]string{}
	var rest []string
	for i := 0; i < len(rulespec); i++ {
		arg := rulespec[i]
		negated := arg == "!"
		if negated {
			if i+1 >= len(rulespec) {
				return "", false
			}
			i++
			arg = rulespec[i]
		}
		if isHeaderOption(arg) {
			if i+1 >= len(rulespec) || header[arg] != nil || !plain(rulespec[i+1]) {
				return "", false
			}
			opt := []string{arg, rulespec[i+1]}
			if negated {
				opt = append([]string{"!"}, opt...)
			}
			header[arg] = opt
			i++
			continue
		}
		if negated {
			rest = append(rest, "!")
		}
		if arg == "--comment" && i+1 < len(rulespec) {
			rest = append(rest, arg, quoted(rulespec[i+1]))
			i++
			continue
		}
		if !plain(arg) {
			return "", false
		}
		rest = append(rest, arg)
	}
	line := []string{"-A", chain}
	for _, opt := range headerOptions {
		line = append(line, header[opt]...)
	}
	return strings.Join(append(line, rest...), " "), true
}

func isHeaderOption(arg string) bool {
	for _, opt := range headerOptions {
		if arg == opt {
			return true
		}
	}
	return false
}

// plain: printed by iptables as written (names, addresses, ports, marks).
func plain(arg string) bool {
	if arg == "" {
		return false
	}
	for _, c := range arg {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:,", c)) {
			return false
		}
	}
	return true
}

// quoted is iptables' xtables_save_string: a string of letters, digits,
// dashes and underscores as it is; any other in double quotes, each
// double quote, backslash and apostrophe in it escaped by a backslash.
func quoted(value string) string {
	if value != "" && strings.Trim(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == "" {
		return value
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range value {
		if c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}
