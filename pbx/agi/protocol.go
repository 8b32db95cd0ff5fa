package agi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on what a peer may send. Asterisk's environment is about 25 short lines; the
// limits only stop a broken or hostile peer from growing our memory.
const (
	maxLineLength = 4096
	maxEnvLines   = 256
)

var (
	errLineTooLong   = errors.New("line too long")
	errEmptyEnv      = errors.New("empty AGI environment")
	errTooManyLines  = errors.New("AGI environment has too many lines")
	errHangup        = errors.New("channel hung up")
	errCommandFailed = errors.New("AGI command failed")
)

// lineReader reads the newline-terminated lines of the AGI protocol from one buffer, so no
// byte read ahead is ever lost between the environment and the command replies.
type lineReader struct {
	r *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, maxLineLength)}
}

// readLine returns the next line without its "\n" or "\r\n".
func (l *lineReader) readLine() (string, error) {
	b, err := l.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", errLineTooLong
	case errors.Is(err, io.EOF) && len(b) > 0:
		return "", io.ErrUnexpectedEOF
	case err != nil:
		return "", err
	}
	b = bytes.TrimSuffix(b[:len(b)-1], []byte{'\r'})
	return string(b), nil
}

// readEnv reads the AGI environment: "agi_name: value" lines up to a blank line.
func readEnv(l *lineReader) (map[string]string, error) {
	env := make(map[string]string, 32)
	for n := 0; ; n++ {
		line, err := l.readLine()
		if err != nil {
			return nil, err
		}
		if line == "" {
			if len(env) == 0 {
				return nil, errEmptyEnv
			}
			return env, nil
		}
		if n >= maxEnvLines {
			return nil, errTooManyLines
		}
		key, value, err := parseEnvLine(line)
		if err != nil {
			return nil, err
		}
		env[key] = value
	}
}

// parseEnvLine splits one environment line. Keys are what Asterisk writes: "agi_" and then
// lower-case letters, digits and underscores.
func parseEnvLine(line string) (key, value string, err error) {
	key, value, ok := strings.Cut(line, ":")
	if !ok || !validEnvKey(key) {
		return "", "", fmt.Errorf("malformed AGI environment line %.60q", line)
	}
	return key, strings.TrimSpace(value), nil
}

func validEnvKey(key string) bool {
	if len(key) <= len("agi_") || len(key) > 64 || !strings.HasPrefix(key, "agi_") {
		return false
	}
	for i := len("agi_"); i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// envValue reads a value the way the dialplan means it: Asterisk writes "unknown" for an
// empty caller id, DNID or RDNIS.
func envValue(env map[string]string, key string) string {
	v := env[key]
	if v == "unknown" {
		return ""
	}
	return v
}

// scriptName returns the script of agi://host:port/<script>?query, without the query.
func scriptName(env map[string]string) string {
	s := env["agi_network_script"]
	if s == "" {
		// Older Asterisk versions send only agi_request (the whole URL).
		s = env["agi_request"]
		if i := strings.Index(s, "://"); i >= 0 {
			s = s[i+3:]
			if j := strings.IndexByte(s, '/'); j >= 0 {
				s = s[j+1:]
			} else {
				s = ""
			}
		}
	}
	s, _, _ = strings.Cut(s, "?")
	return strings.Trim(s, "/")
}

// readReply reads the reply to one command. Asterisk may interleave "100 Trying" lines and,
// when the caller hangs up, an unsolicited "HANGUP" line; a 520 reply spans several lines.
func readReply(l *lineReader) error {
	for {
		line, err := l.readLine()
		if err != nil {
			return err
		}
		if line == "HANGUP" {
			return errHangup
		}
		code, rest, err := replyCode(line)
		if err != nil {
			return err
		}
		switch {
		case code == 100:
			continue
		case code == 200:
			return nil
		case strings.HasPrefix(rest, "-"):
			// "520-Invalid command syntax.  Proper usage follows:" up to "520 End of …".
			if err := skipMultiline(l, code); err != nil {
				return err
			}
			return fmt.Errorf("%w: %d", errCommandFailed, code)
		default:
			return fmt.Errorf("%w: %.80q", errCommandFailed, line)
		}
	}
}

func replyCode(line string) (int, string, error) {
	if len(line) < 3 {
		return 0, "", fmt.Errorf("malformed AGI reply %.60q", line)
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil || code < 100 || code > 599 {
		return 0, "", fmt.Errorf("malformed AGI reply %.60q", line)
	}
	return code, line[3:], nil
}

func skipMultiline(l *lineReader, code int) error {
	end := strconv.Itoa(code) + " "
	for n := 0; n < maxEnvLines; n++ {
		line, err := l.readLine()
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, end) {
			return nil
		}
	}
	return errTooManyLines
}

// setVariableCommand formats SET VARIABLE. Values are checked by the caller (safeValue);
// the quotes keep an empty value a distinct argument.
func setVariableCommand(name, value string) string {
	return "SET VARIABLE " + name + ` "` + value + "\"\n"
}
