package asterisk

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The fuzz targets feed arbitrary bytes to the parsers, seeded with every real
// capture plus the synthetic shapes of the table tests. Agents parse whatever an
// Asterisk (or a broken one) prints, so a parser must return an error, never
// panic, and never return a value together with an error.

// addSeeds adds every fixture file and the extra seeds to the corpus.
func addSeeds(f *testing.F, extra ...string) {
	f.Helper()
	for _, name := range fixtureNames(f) {
		f.Add(readFixture(f, name))
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// checkParseErr fails unless err is nil or wraps one of the package's sentinels:
// a parser error that is none of them would slip past the agents' errors.Is checks.
func checkParseErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []error{ErrUnexpectedOutput, ErrNotFound, ErrNoSuchCommand, ErrNotRunning} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel: %v", err)
}

func FuzzParsePeers(f *testing.F) {
	addSeeds(f,
		header20+row20("omnileads/issabel", "10.0.0.5", "   ", "Yes", "Auto (Yes)", "   ", "5161", "LAGGED (2500 ms)", "OML", "")+peersSummary(1, 1, 0, 0, 0),
		header117+"x/y 1.2.3.4  N      5060 UNKNOWN\n",
		header18+"a 1.2.3.4 D 0 Unmonitored\n",
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		peers, err := ParsePeers(b)
		checkParseErr(t, err)
		if err != nil && peers != nil {
			t.Fatalf("peers and error together: %v", err)
		}
		for _, p := range peers {
			if p.Name == "" || p.Port < 0 || p.Port > 99999 {
				t.Fatalf("impossible peer %+v", p)
			}
			if p.HasLatency != p.Status.Answered() {
				t.Fatalf("latency without OK/LAGGED: %+v", p)
			}
		}
	})
}

func FuzzParsePeer(f *testing.F) {
	addSeeds(f, "Peer x not found.\n", "  * Name : x\n  Status : UNKNOWN\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParsePeer(b)
		checkParseErr(t, err)
		if err == nil && (d.Name == "" || d.StatusKind == "") {
			t.Fatalf("peer without name or status: %+v", d)
		}
		_ = d.CodecList()
	})
}

func FuzzParseEndpoints(f *testing.F) {
	addSeeds(f, "No objects found.\n", "=====================\n Endpoint:  a  Unavailable  0 of inf\nObjects found: 1\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		eps, err := ParseEndpoints(b)
		checkParseErr(t, err)
		if err != nil && eps != nil {
			t.Fatalf("endpoints and error together: %v", err)
		}
		for _, e := range eps {
			if e.Name == "" {
				t.Fatalf("endpoint without a name: %+v", e)
			}
			_ = e.Pending()
		}
	})
}

func FuzzParseEndpoint(f *testing.F) {
	addSeeds(f, "Unable to find object x.\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseEndpoint(b)
		checkParseErr(t, err)
		if err == nil && (d.Endpoint.Name == "" || len(d.Params) == 0) {
			t.Fatalf("detail without endpoint or parameters: %+v", d)
		}
	})
}

func FuzzParseDialplanShow(f *testing.F) {
	addSeeds(f,
		"[ Context 'c' created by 'pbx_config' ]\n"+dpLine("'5000' =>", "1. Dial(SIP/omnileads/098098)", "extensions_custom.conf:3")+
			dpLine("   [l]", "2. Set(x=$[1])", "x.conf:4")+"\n-= 1 extension (2 priorities) in 1 context. =-\n",
		"[ Context 'c' created by 'r' ]\n  '1' =>  hint: SIP/1 [r]\n-= 1 extension (1 priority) in 1 context. =-\n",
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDialplanShow(b)
		checkParseErr(t, err)
		if err == nil {
			_, _ = d.Find("c", "5000")
		}
	})
}

func FuzzStripLogLines(f *testing.F) {
	addSeeds(f, "[Nov 23 20:34:32] \x1b[1;33mNOTICE\x1b[0m[1]: x\n", "a\r\n    -- b\r\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		got := StripLogLines(b)
		if got == nil || len(got) > len(b) {
			t.Fatalf("bad result length %d for %d bytes", len(got), len(b))
		}
		// Only whole lines are dropped: what is left is a subsequence of the
		// input's lines, in order, and stripping again changes nothing.
		if !bytes.Equal(got, StripLogLines(got)) {
			t.Fatalf("not idempotent")
		}
		rest := string(b)
		for _, l := range strings.SplitAfter(string(got), "\n") {
			i := strings.Index(rest, l)
			if i < 0 {
				t.Fatalf("kept line %q is not an input line in order", l)
			}
			rest = rest[i+len(l):]
		}
	})
}
