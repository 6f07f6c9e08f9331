package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// maxCLIOutput bounds what parse reads from stdin; a `pjsip show endpoints` of a
// large OMniLeads is well under a megabyte.
const maxCLIOutput = 16 << 20

func newParseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "parse",
		Short: "Read Asterisk CLI output on stdin and print what pbxfleet understands of it, as JSON",
		Long: `parse runs the same parsers the node agents use on Asterisk CLI output you paste or pipe
in, and prints the result as JSON. Use it to check what an agent would conclude from a
host's output, or to turn the CLI's tables into data.

The parsers accept the formats of Asterisk 1.8 to 20, skip NOTICE/WARNING log lines mixed
into the output, and fail (exit status 2) on output they cannot read, rather than guess:
an unreadable state is unknown, never healthy. "Unable to connect to remote asterisk"
and "No such command" are reported as errors too.

Remember that a reachable peer or an Avail endpoint only proves the far side answers
qualify (even a 401 counts): it does not prove the trunk can carry a call (docs/asterisk.md#how-the-two-sides-relate).`,
		Example: `  # On the Issabel host
  asterisk -rx 'sip show peers' | pbxfleet parse peers

  # On the OMniLeads host (Docker deployment)
  docker exec oml-asterisk-prodenv asterisk -rx 'pjsip show endpoints' | pbxfleet parse endpoints

  # From a saved capture
  pbxfleet parse peers < sip_show_peers.txt | jq '.peers[] | select(.reachable | not)'`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "peers",
			Short: "Parse `sip show peers` (chan_sip, the Issabel side)",
			Long: `peers reads the output of "sip show peers" on stdin and prints every peer: name, user,
host, port, qualify status and latency, plus whether the status says reachable (OK,
LAGGED) or pending (UNKNOWN: qualify not answered yet, not down).`,
			Example: `  asterisk -rx 'sip show peers' | pbxfleet parse peers`,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return parsePeers(cmd.InOrStdin(), cmd.OutOrStdout())
			},
		},
		&cobra.Command{
			Use:   "endpoints",
			Short: "Parse `pjsip show endpoints` (res_pjsip, the OMniLeads side)",
			Long: `endpoints reads the output of "pjsip show endpoints" on stdin and prints every endpoint:
state, auths, aors, contacts with their qualify status and round trip, transports and
identify matches, plus whether a contact is Avail (reachable) or still pending
(Unknown, NonQual, Created: not known to be down yet).`,
			Example: `  asterisk -rx 'pjsip show endpoints' | pbxfleet parse endpoints`,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return parseEndpoints(cmd.InOrStdin(), cmd.OutOrStdout())
			},
		},
	)
	return cmd
}

// peerJSON is one peer of `pbxfleet parse peers`.
type peerJSON struct {
	Name        string `json:"name"`
	User        string `json:"user,omitempty"`
	Host        string `json:"host"`
	Port        int    `json:"port,omitempty"`
	Dynamic     bool   `json:"dynamic"`
	Status      string `json:"status"`
	LatencyMS   *int   `json:"latency_ms,omitempty"`
	Description string `json:"description,omitempty"`
	Truncated   bool   `json:"truncated,omitempty"`
	Reachable   bool   `json:"reachable"`
	Pending     bool   `json:"pending"`
}

// peersJSON is the document `pbxfleet parse peers` prints.
type peersJSON struct {
	Count int        `json:"count"`
	Peers []peerJSON `json:"peers"`
}

func parsePeers(in io.Reader, out io.Writer) error {
	data, err := readCLIOutput(in)
	if err != nil {
		return err
	}
	peers, err := asterisk.ParsePeers(data)
	if err != nil {
		return opcli.Invalid(fmt.Errorf("parse peers: %w", err))
	}
	doc := peersJSON{Count: len(peers), Peers: make([]peerJSON, 0, len(peers))}
	for _, p := range peers {
		pj := peerJSON{
			Name: p.Name, User: p.User, Host: p.Host, Port: p.Port, Dynamic: p.Dynamic,
			Status: string(p.Status), Description: p.Description, Truncated: p.Truncated,
			Reachable: p.Reachable(), Pending: p.Status.Pending(),
		}
		if p.HasLatency {
			ms := p.LatencyMS
			pj.LatencyMS = &ms
		}
		doc.Peers = append(doc.Peers, pj)
	}
	return writeJSON(out, doc)
}

// endpointJSON is one endpoint of `pbxfleet parse endpoints`.
type endpointJSON struct {
	Name        string          `json:"name"`
	CallerID    string          `json:"caller_id,omitempty"`
	State       string          `json:"state"`
	Channels    string          `json:"channels"`
	MaxChannels string          `json:"max_channels"`
	OutAuth     []authJSON      `json:"out_auth"`
	InAuth      []authJSON      `json:"in_auth"`
	AORs        []string        `json:"aors"`
	Contacts    []contactJSON   `json:"contacts"`
	Transports  []transportJSON `json:"transports"`
	Identifies  []string        `json:"identifies"`
	Matches     []string        `json:"matches"`
	Calls       []channelJSON   `json:"active_channels"`
	Reachable   bool            `json:"reachable"`
	Pending     bool            `json:"pending"`
}

type authJSON struct {
	ID   string `json:"id"`
	User string `json:"user"`
}

type contactJSON struct {
	AOR    string   `json:"aor"`
	URI    string   `json:"uri"`
	Hash   string   `json:"hash"`
	Status string   `json:"status"`
	RTTMS  *float64 `json:"rtt_ms,omitempty"`
}

type transportJSON struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Bind string `json:"bind"`
}

type channelJSON struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Time  string `json:"time"`
	Exten string `json:"exten"`
}

// endpointsJSON is the document `pbxfleet parse endpoints` prints.
type endpointsJSON struct {
	Count     int            `json:"count"`
	Endpoints []endpointJSON `json:"endpoints"`
}

func parseEndpoints(in io.Reader, out io.Writer) error {
	data, err := readCLIOutput(in)
	if err != nil {
		return err
	}
	eps, err := asterisk.ParseEndpoints(data)
	if err != nil {
		return opcli.Invalid(fmt.Errorf("parse endpoints: %w", err))
	}
	doc := endpointsJSON{Count: len(eps), Endpoints: make([]endpointJSON, 0, len(eps))}
	for _, e := range eps {
		ej := endpointJSON{
			Name: e.Name, CallerID: e.CallerID, State: e.State, Channels: e.Channels, MaxChannels: e.MaxChannels,
			OutAuth: authsJSON(e.OutAuth), InAuth: authsJSON(e.InAuth),
			AORs: nonNil(e.AORs), Identifies: nonNil(e.Identifies), Matches: nonNil(e.Matches),
			Contacts: make([]contactJSON, 0, len(e.Contacts)), Transports: make([]transportJSON, 0, len(e.Transports)),
			Calls:     make([]channelJSON, 0, len(e.ActiveChannels)),
			Reachable: e.Reachable(), Pending: e.Pending(),
		}
		for _, c := range e.Contacts {
			cj := contactJSON{AOR: c.AOR, URI: c.URI, Hash: c.Hash, Status: string(c.Status)}
			if c.HasRTT {
				rtt := c.RTTMS
				cj.RTTMS = &rtt
			}
			ej.Contacts = append(ej.Contacts, cj)
		}
		for _, t := range e.Transports {
			ej.Transports = append(ej.Transports, transportJSON{ID: t.ID, Type: t.Type, Bind: t.Bind})
		}
		for _, ch := range e.ActiveChannels {
			ej.Calls = append(ej.Calls, channelJSON{ID: ch.ID, State: ch.State, Time: ch.Time, Exten: ch.Exten})
		}
		doc.Endpoints = append(doc.Endpoints, ej)
	}
	return writeJSON(out, doc)
}

func authsJSON(refs []asterisk.AuthRef) []authJSON {
	out := make([]authJSON, 0, len(refs))
	for _, r := range refs {
		out = append(out, authJSON{ID: r.ID, User: r.User})
	}
	return out
}

// nonNil makes empty lists print as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// readCLIOutput reads stdin up to maxCLIOutput.
func readCLIOutput(in io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(in, maxCLIOutput+1))
	if err != nil {
		return nil, fmt.Errorf("parse: read stdin: %w", err)
	}
	if len(data) > maxCLIOutput {
		return nil, opcli.Invalid(fmt.Errorf("parse: more than %d MiB on stdin", maxCLIOutput>>20))
	}
	return data, nil
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
