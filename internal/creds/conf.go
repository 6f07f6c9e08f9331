package creds

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConf returns a nats-server configuration fragment, an authorization
// block with the nkey users and permissions of NkeyUsers, for running pbxfleet
// on an external nats-server: include it from the server's config
// (`include ./nats-server.conf`) next to `jetstream { ... }`. It holds public
// keys only.
func (s *Set) ServerConf() []byte {
	var b strings.Builder
	b.WriteString("# pbxfleet fleet authorization, written by `pbxfleet creds`; public keys only.\n")
	b.WriteString("# Include it in the nats-server config: include ./" + ServerConfFile + "\n")
	b.WriteString("# Each node may read its own desired key and write its own result, status and endpoints.\n")
	b.WriteString("authorization {\n  users = [\n")
	names := append([]string{Operator, Orchestrator}, s.NodeIDs()...)
	for i, u := range s.NkeyUsers() {
		fmt.Fprintf(&b, "    # %s\n    {\n      nkey: %s\n", names[i], quote(u.Nkey))
		writePermissions(&b, u.Permissions, "      ")
		b.WriteString("    }\n")
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String())
}

func writePermissions(b *strings.Builder, p *server.Permissions, indent string) {
	if p == nil {
		return
	}
	b.WriteString(indent + "permissions: {\n")
	in := indent + "  "
	writeSubjects(b, in, "publish", p.Publish)
	writeSubjects(b, in, "subscribe", p.Subscribe)
	if r := p.Response; r != nil {
		fmt.Fprintf(b, "%sallow_responses: { max: %d, expires: %s }\n", in, r.MaxMsgs, quote(r.Expires.String()))
	}
	b.WriteString(indent + "}\n")
}

func writeSubjects(b *strings.Builder, indent, name string, sp *server.SubjectPermission) {
	if sp == nil {
		return
	}
	fmt.Fprintf(b, "%s%s: {\n", indent, name)
	for _, list := range []struct {
		name     string
		subjects []string
	}{{"allow", sp.Allow}, {"deny", sp.Deny}} {
		if len(list.subjects) == 0 {
			continue
		}
		q := make([]string, len(list.subjects))
		for i, subj := range list.subjects {
			q[i] = quote(subj)
		}
		fmt.Fprintf(b, "%s  %s: [%s]\n", indent, list.name, strings.Join(q, ", "))
	}
	b.WriteString(indent + "}\n")
}

// quote writes s as a double-quoted string: unquoted, "$JS..." would be read as
// a variable reference and ">" as an operator.
func quote(s string) string { return strconv.Quote(s) }
