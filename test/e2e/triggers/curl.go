//go:build e2e

package triggers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// curlRequest reads the headers and body a Triggers example's curl.sh
// sends (-H, -d, --data-binary @file relative to the module), as curl
// would send them: -d without a Content-Type header sends a form.
func curlRequest(root, script string) (map[string]string, []byte, error) {
	data, err := os.ReadFile(script)
	if err != nil {
		return nil, nil, err
	}
	words, err := shellWords(string(data))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", script, err)
	}
	headers := map[string]string{}
	var body []byte
	for i := 0; i < len(words)-1; i++ {
		switch words[i] {
		case "-H":
			k, v, _ := strings.Cut(words[i+1], ":")
			headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case "-d", "--data", "--data-binary":
			if file, ok := strings.CutPrefix(words[i+1], "@"); ok {
				if body, err = os.ReadFile(filepath.Join(root, file)); err != nil {
					return nil, nil, err
				}
			} else {
				body = []byte(words[i+1])
			}
		}
	}
	if body == nil {
		return nil, nil, fmt.Errorf("%s sends no body", script)
	}
	if _, ok := headers["Content-Type"]; !ok {
		headers["Content-Type"] = "application/x-www-form-urlencoded"
	}
	return headers, body, nil
}

// shellWords splits a shell script into words: single quotes literal,
// double quotes with \" and \\, backslash-newline joins lines, # starts a
// comment at a word's start.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\') {
					j++
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			i = j
			inWord = true
		case c == '#' && !inWord:
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
