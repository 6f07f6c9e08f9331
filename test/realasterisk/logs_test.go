package realasterisk

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestManagedFileProblemRE runs without Asterisk: the lines a managed file
// can cause, in Asterisk 20.20.1's own format (with and without a call id),
// match; the captured logs of a refused call (NOTICE and VERBOSE only) and
// problems of other modules do not.
func TestManagedFileProblemRE(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"[2026-11-23 20:34:32] ERROR[5525] res_sorcery_config.c: Could not create an object of type 'endpoint' with id 'issabel' from configuration file 'pjsip_wizard.conf'", true},
		{"[2026-11-23 20:34:32] WARNING[5525] res_pjsip_config_wizard.c: Unable to create objects for wizard 'issabel'", true},
		{"[2026-11-23 20:34:32] WARNING[3313][C-00000003] chan_sip.c: Peer 'omnileads' is now UNREACHABLE!", true},
		{"[2026-11-23 20:34:32] WARNING[3313] chan_sip.c: Peer 'omnileads' is now UNREACHABLE!", true},
		{"[2026-11-23 20:34:32] WARNING[3313] config.c: Unknown directive 'includ' at line 3 of /etc/asterisk/sip_custom.conf", true},
		{"[2026-11-23 20:34:32] ERROR[3313] pbx_config.c: Invalid priority/label 'x' at line 4", true},
		{"[2026-11-23 20:34:32] WARNING[3313] pbx.c: Context 'pbxfleet_probe' tries to include nonexistent context 'x'", true},
		{"[2026-11-23 20:34:32] NOTICE[5525] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:issabel@127.0.0.2>' failed for '127.0.0.2:5060' - Failed to authenticate", false},
		{"[2026-11-23 20:34:32] WARNING[3313] chan_sip.c: Peer 'alice' is now UNREACHABLE!", false},
		{"[2026-11-23 20:34:32] WARNING[3313] res_rtp_asterisk.c: some unrelated warning", false},
		{"[2026-11-23 20:34:32] VERBOSE[3313] config.c: Parsing '/etc/asterisk/pbxfleet_sip.conf': Found", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, managedFileProblemRE.MatchString(tt.line), tt.line)
	}
	for _, name := range []string{"pbx_log_call_098098_BAD_SECRET.txt", "oml_log_call_098098_BAD_SECRET.txt"} {
		f, err := os.Open(filepath.Join("..", "..", "internal", "testfixtures", "asterisk-20.20.1", name))
		require.NoError(t, err)
		var lines []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "[") {
				lines = append(lines, sc.Text())
			}
		}
		require.NoError(t, f.Close())
		require.NotEmpty(t, lines, name)
		assert.Empty(t, managedFileProblems(lines), name)
	}
}
