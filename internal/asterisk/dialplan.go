package asterisk

import (
	"fmt"
	"strings"
)

// The contexts the managed dialplans extend. Calls from OML land in the PBX's
// from-internal, which includes from-internal-custom ahead of the GUI's dialplan;
// calls from the PBX land in OML's from-pbx (docs/asterisk.md#how-the-two-sides-relate, #calls-from-the-pbx-to-omnileads).
const (
	pbxCustomContext  = "from-internal-custom"
	omlInboundContext = "from-pbx"
)

// renderPBXDialplan writes [from-internal-custom] (one extension per DID, the agent
// routes, the probe guard) and the probe context. Asterisk merges our
// [from-internal-custom] with the stock one in extensions_custom.conf (docs/asterisk.md#where-the-files-go).
func renderPBXDialplan(t Trunk) string {
	var b strings.Builder
	writeHeader(&b, t, rolePBX)
	fmt.Fprintf(&b, "[%s]\n", pbxCustomContext)
	for _, d := range t.DIDs {
		fmt.Fprintf(&b, "; DID %s -> OMniLeads inbound route\n", d.Number)
		fmt.Fprintf(&b, "exten => %s,1,Dial(SIP/%s/%s)\n", d.LocalNumber(), t.PBXTrunkName, d.Number)
	}
	if len(t.Agents) > 0 {
		switch t.AgentRouting {
		case AgentRoutingPattern:
			b.WriteString("; agents (pattern routing): one route for every agent number\n")
			fmt.Fprintf(&b, "exten => %s,1,Dial(SIP/%s/${EXTEN})\n", t.AgentPattern, t.PBXTrunkName)
		case AgentRoutingPerAgent:
			for _, a := range t.Agents {
				// The name is free text: it goes into a comment only, never into a dial string.
				if a.Name != "" {
					fmt.Fprintf(&b, "; agent %s (%s) SIP %s\n", a.ID, a.Name, a.SIPNumber)
				} else {
					fmt.Fprintf(&b, "; agent %s SIP %s\n", a.ID, a.SIPNumber)
				}
				fmt.Fprintf(&b, "exten => %s,1,Dial(SIP/%s/%s)\n", a.LocalNumber(), t.PBXTrunkName, a.DialNumber())
			}
		}
	}
	b.WriteString("; probe guard: a probe call from OMniLeads to this number ends as unallocated (cause 1) and rings no one\n")
	writeProbeGuard(&b, t.ProbeNumber)
	b.WriteString("\n")
	writeProbeContext(&b, fmt.Sprintf("SIP/%s/${EXTEN}", t.PBXTrunkName))
	return b.String()
}

// renderOMLDialplan writes OML's probe guard in [from-pbx] and the probe context.
// The guard is an exact match, so it wins over OML's own _1XXX. and _X. routes in
// [from-pbx] for that one number only (docs/asterisk.md#calls-from-the-pbx-to-omnileads).
func renderOMLDialplan(t Trunk) string {
	var b strings.Builder
	writeHeader(&b, t, roleOML)
	fmt.Fprintf(&b, "[%s]\n", omlInboundContext)
	b.WriteString("; probe guard: a probe call from the PBX to this number ends as unallocated (cause 1) and rings no one\n")
	writeProbeGuard(&b, t.ProbeNumber)
	b.WriteString("\n")
	writeProbeContext(&b, fmt.Sprintf("PJSIP/${EXTEN}@%s", t.OMLTrunkName))
	return b.String()
}

// writeProbeGuard makes the probe number end as unallocated on this side, which is
// what the far side's probe reads as "authenticated and reached the dialplan"
// (cause 1) without ringing anyone (docs/asterisk.md#the-probe-call).
func writeProbeGuard(b *strings.Builder, probe string) {
	fmt.Fprintf(b, "exten => %s,1,Hangup(1)\n", probe)
}

// writeProbeContext writes the context the agent originates probes into. channel
// originate reports nothing, so the outcome is kept in AstDB for "database get"
// (docs/asterisk.md#the-probe-call, internal/testfixtures/asterisk-20.20.1/probe_call_matrix.md).
func writeProbeContext(b *strings.Builder, dialTarget string) {
	db := fmt.Sprintf("DB(%s/%s)", ProbeDBFamily, ProbeDBKey)
	fmt.Fprintf(b, "[%s]\n", ProbeContext)
	fmt.Fprintf(b, "exten => _X.,1,Set(%s=started)\n", db)
	fmt.Fprintf(b, " same => n,Dial(%s,5,g)\n", dialTarget)
	fmt.Fprintf(b, " same => n,Set(%s=${DIALSTATUS}:${HANGUPCAUSE})\n", db)
	b.WriteString(" same => n,Hangup()\n")
}
