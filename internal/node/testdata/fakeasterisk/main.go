// Command fakeasterisk stands in for `asterisk -rx` in the node agent's tests:
// it answers each CLI command with the bytes of the real Asterisk 20.20.1
// captures in internal/testfixtures, chosen by a mode file, so the agent's exec path,
// parsers and decisions all meet real Asterisk text. It is built once per test
// run (TestMain) and only imports the standard library, so each exec is cheap.
//
// Usage: fakeasterisk <fixture dir> <state dir> <role> <config dir> -rx <command>
// Modes (file <state dir>/mode): ok, unreachable, badsecret, down, unknown (the
// peer not qualified yet), lagged, slowreload (the trunk object appears only at
// the third look after a reload, as with `sip reload` on a PBX with thousands of
// peers), slowdialplan (dialplan show hangs). Every command is appended to
// <state dir>/commands, one per line.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var fixtureDir string

func main() {
	if len(os.Args) < 7 {
		fmt.Fprintln(os.Stderr, "usage: fakeasterisk FIXTURES STATE ROLE CONFDIR -rx COMMAND")
		os.Exit(2)
	}
	fixtureDir = os.Args[1]
	out, code := fakeAsterisk(os.Args[2], os.Args[3], os.Args[4], os.Args[len(os.Args)-1])
	fmt.Print(out)
	os.Exit(code)
}

func fixture(name string) string {
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func fakeAsterisk(stateDir, role, confDir, cmd string) (string, int) {
	mode := "ok"
	if b, err := os.ReadFile(filepath.Join(stateDir, "mode")); err == nil {
		mode = strings.TrimSpace(string(b))
	}
	if mode == "down" {
		// The capture adds an "exit code: 1" line of its own; the real stderr is the first line.
		first, _, _ := strings.Cut(fixture("pbx_rx_when_not_running.txt"), "\n")
		return first + "\n", 1
	}
	appendLine(filepath.Join(stateDir, "commands"), cmd)
	db := filepath.Join(stateDir, "astdb")
	f := strings.Fields(cmd)
	switch {
	case cmd == "sip reload":
		_ = os.WriteFile(filepath.Join(stateDir, "looks"), nil, 0o600)
		return fixture("pbx_sip_reload.txt"), 0
	case cmd == "dialplan reload":
		return fixture("pbx_dialplan_reload.txt"), 0
	case cmd == "module reload res_pjsip.so":
		_ = os.WriteFile(filepath.Join(stateDir, "looks"), nil, 0o600)
		return fixture("oml_module_reload_res_pjsip.txt"), 0
	case cmd == "sip show peer omnileads":
		if !managedHas(confDir, "pbxfleet_sip.conf", "[omnileads]") || notYet(stateDir, mode) {
			return "Peer omnileads not found.\n", 0
		}
		return fixture("pbx_sip_show_peer_omnileads_OK.txt"), 0
	case cmd == "sip show peers":
		switch mode {
		case "unreachable":
			return fixture("pbx_sip_show_peers_UNREACHABLE_oml_stopped.txt"), 0
		case "unknown":
			return peersWithStatus("UNKNOWN  ", "0 online, 1 offline"), 0
		case "lagged":
			return peersWithStatus("LAGGED (2500 ms)", "1 online, 0 offline"), 0
		}
		return fixture("pbx_sip_show_peers_OK.txt"), 0
	case cmd == "pjsip show endpoint issabel":
		// oml_pjsip_trunks.conf is where OMniLeads writes the trunks it owns.
		if (!managedHas(confDir, "pbxfleet_pjsip_wizard.conf", "[issabel]") && !managedHas(confDir, "oml_pjsip_trunks.conf", "[issabel]")) || notYet(stateDir, mode) {
			return "Unable to find object issabel.\n", 0
		}
		return fixture("oml_pjsip_show_endpoint_issabel.txt"), 0
	case cmd == "pjsip show endpoints":
		if mode == "unreachable" {
			return fixture("oml_pjsip_show_endpoints_Unavail_pbx_stopped.txt"), 0
		}
		return fixture("oml_pjsip_show_endpoints_Avail.txt"), 0
	case strings.HasPrefix(cmd, "sip qualify peer "), strings.HasPrefix(cmd, "pjsip qualify "):
		return "", 0
	case len(f) == 3 && f[0] == "dialplan" && f[1] == "show":
		if mode == "slowdialplan" {
			time.Sleep(time.Minute) // the agent's deadline kills it first
		}
		return fakeDialplanShow(confDir, f[2]), 0
	case len(f) == 5 && f[0] == "database" && f[1] == "put":
		_ = os.WriteFile(db, []byte(f[4]), 0o600)
		return "Updated database successfully\n", 0
	case len(f) == 4 && f[0] == "database" && f[1] == "get":
		b, err := os.ReadFile(db)
		if err != nil {
			return "Database entry not found.\n", 0
		}
		return "Value: " + string(b) + "\n", 0
	case len(f) >= 3 && f[0] == "channel" && f[1] == "originate":
		// probe_call_matrix.md: matching credentials end CHANUNAVAIL:1, the seed's
		// mismatched secret CONGESTION:21.
		outcome := "CHANUNAVAIL:1"
		if mode == "badsecret" {
			outcome = "CONGESTION:21"
		}
		_ = os.WriteFile(db, []byte(outcome), 0o600)
		return "", 0
	}
	return fmt.Sprintf("No such command '%s' (type 'core show help %s' for other possible commands)\n", cmd, cmd), 0
}

// appendLine appends line to the file at path.
func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line + "\n")
}

// notYet counts the looks at the trunk object since the last reload and, in
// mode slowreload, says it is not there for the first two.
func notYet(stateDir, mode string) bool {
	if mode != "slowreload" {
		return false
	}
	path := filepath.Join(stateDir, "looks")
	b, _ := os.ReadFile(path)
	appendLine(path, "look")
	return strings.Count(string(b), "look") < 2
}

// peersWithStatus is the real `sip show peers` capture with the trunk's status
// cell and the summary's monitored counts replaced, widths kept.
func peersWithStatus(status, monitored string) string {
	out := fixture("pbx_sip_show_peers_OK.txt")
	out = strings.Replace(out, "OK (1 ms)"+strings.Repeat(" ", len(status)-min(len(status), 9)), status, 1)
	return strings.Replace(out, "1 online, 0 offline", monitored, 1)
}

func managedHas(confDir, file, text string) bool {
	b, err := os.ReadFile(filepath.Join(confDir, file))
	return err == nil && strings.Contains(string(b), text)
}

var extenRE = regexp.MustCompile(`^exten => ([^,]+),1,(.*)$`)

// fakeDialplanShow prints `dialplan show <context>` in Asterisk 20's layout from
// the managed dialplan file, the way Asterisk lists what that file declared.
func fakeDialplanShow(confDir, context string) string {
	var body strings.Builder
	exts, prios := 0, 0
	for _, file := range []string{"pbxfleet_extensions.conf"} {
		b, err := os.ReadFile(filepath.Join(confDir, file))
		if err != nil {
			continue
		}
		cur, p := "", 0
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "[") {
				cur = strings.Trim(line, "[]")
				continue
			}
			if cur != context {
				continue
			}
			if m := extenRE.FindStringSubmatch(line); m != nil {
				exts++
				prios++
				p = 1
				fmt.Fprintf(&body, "  %-17s %-45s [%s:%d]\n", "'"+m[1]+"' =>", "1. "+m[2], file, i+1)
			} else if rest, ok := strings.CutPrefix(line, "same => n,"); ok {
				prios++
				p++
				fmt.Fprintf(&body, "  %-17s %-45s [%s:%d]\n", "", fmt.Sprintf("%d. %s", p, rest), file, i+1)
			}
		}
	}
	if exts == 0 {
		return fmt.Sprintf("There is no existence of '%s' context\nCommand 'dialplan show %s' failed.\n", context, context)
	}
	return fmt.Sprintf("[ Context '%s' created by 'pbx_config' ]\n%s\n-= %d %s (%d %s) in 1 context. =-\n",
		context, body.String(), exts, plural(exts, "extension", "extensions"), prios, plural(prios, "priority", "priorities"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
