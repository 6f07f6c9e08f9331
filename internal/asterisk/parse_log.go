package asterisk

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

var (
	// logLineRE matches one line of an Asterisk log message as the console or a log
	// file prints it (docs/asterisk.md#reloads-and-cli-replies: log lines can be mixed into any command's
	// output). Both shapes are real:
	//   [Nov 23 20:34:32] NOTICE[3313]: chan_sip.c:1234 in func: text      (console)
	//   [2026-11-23 20:34:32] NOTICE[3313][C-00000003] chan_sip.c: text    (log file)
	logLineRE = regexp.MustCompile(`^\[[^\]\n]{1,64}\] (?:VERBOSE|NOTICE|WARNING|ERROR|DEBUG|DTMF|SECURITY|FAX)\[[0-9]+\](?:\[C-[0-9A-Fa-f]+\])?:? `)

	// verboseLineRE matches a verbose message with Asterisk's level prefixes
	// ("  == ", "    -- ", "       > "), optionally after a timestamp. Level 1 has
	// a one-space prefix that cannot be told apart from real output, so it stays.
	verboseLineRE = regexp.MustCompile(`^(?:\[[^\]\n]{1,64}\] ?)?(?:  == |    -- |       > )\S`)

	// ansiRE matches terminal colour sequences; a console with colours wraps the
	// level name in them, which would hide a log line from logLineRE.
	ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
)

// isLogLine reports whether line (without its terminator) is a log or verbose line.
func isLogLine(line string) bool {
	if strings.IndexByte(line, 0x1b) >= 0 {
		line = ansiRE.ReplaceAllString(line, "")
	}
	return logLineRE.MatchString(line) || verboseLineRE.MatchString(line)
}

// StripLogLines returns out without the NOTICE/WARNING/ERROR/VERBOSE/DEBUG log lines
// and prefixed verbose messages ("  == ...", "    -- ...") that Asterisk may mix into
// the output of any CLI command (docs/asterisk.md#reloads-and-cli-replies). Every other line is kept byte for
// byte, terminator included. The continuation lines of a multi-line log message
// (a SIP packet dump) do not look like log lines and are kept. It never fails; the
// result is never nil.
func StripLogLines(out []byte) []byte {
	res := make([]byte, 0, len(out))
	for rest := out; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if !isLogLine(strings.TrimRight(string(line), "\r\n")) {
			res = append(res, line...)
		}
	}
	return res
}

// masterConfigNote is what `asterisk -rx` prints on stderr when its -C file is
// missing (fixture rx_exit_codes.txt); it is a note of the client, not output of
// the command, and may precede real output when the default socket path works.
const masterConfigNote = "Unable to open specified master config file '"

// cliLines strips log lines and the client's master-config note from out and
// splits what is left into lines without their "\n" or "\r\n" terminators.
func cliLines(out []byte) []string {
	s := string(StripLogLines(out))
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	raw := strings.Split(s, "\n")
	lines := raw[:0]
	for _, l := range raw {
		l = strings.TrimSuffix(l, "\r")
		if strings.HasPrefix(l, masterConfigNote) {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

// Texts Asterisk prints instead of a command's output (docs/asterisk.md#reloads-and-cli-replies).
const (
	notRunningText    = "Unable to connect to remote asterisk"
	noSuchCommandText = "No such command '"
)

// checkCLIFailure returns an error wrapping ErrNotRunning or ErrNoSuchCommand when
// lines hold one of those answers instead of a command's output, and nil otherwise.
// op names the command for the message.
func checkCLIFailure(op string, lines []string) error {
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, notRunningText):
			return fmt.Errorf("%s: %w: %s", op, ErrNotRunning, l)
		case strings.HasPrefix(l, noSuchCommandText):
			return fmt.Errorf("%s: %w: %s", op, ErrNoSuchCommand, l)
		}
	}
	return nil
}

// unexpected returns an ErrUnexpectedOutput error for op that quotes the offending
// line, shortened so a huge garbage line cannot flood a log.
func unexpected(op, why, line string) error {
	line = textclip.Clip(line, 120)
	if line == "" {
		return fmt.Errorf("%s: %w: %s", op, ErrUnexpectedOutput, why)
	}
	return fmt.Errorf("%s: %w: %s: %q", op, ErrUnexpectedOutput, why, line)
}
