package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// stockFile is one file WriteStockFiles creates.
type stockFile struct {
	name    string
	content string
}

// WriteStockFiles writes into dir the configuration a freshly installed host of role
// would have before pbxfleet touches it: for RolePBX an Issabel-like chan_sip setup
// (sip.conf binding address:5060 and its #include chain, extensions.conf with
// [from-internal] including [from-internal-custom]); for RoleOML an OMniLeads-like
// pjsip setup (transports on address per profile "1.x" or "2.x", pjsip_wizard.conf
// and its #include chain, extensions.conf with [from-pbx]). Existing files are
// overwritten. It fails on an unknown role or profile, a non-loopback address, or
// an I/O error.
func WriteStockFiles(dir string, role Role, address string, profile string) error {
	ip, err := netip.ParseAddr(address)
	if err != nil || !ip.Is4() || !ip.IsLoopback() {
		return fmt.Errorf("write stock files for %s in %s: %w: address %q is not an IPv4 loopback address",
			role, dir, ErrInvalidConfig, address)
	}
	var files []stockFile
	switch role {
	case RolePBX:
		files = pbxStockFiles(address)
	case RoleOML:
		files, err = omlStockFiles(address, profile)
		if err != nil {
			return fmt.Errorf("write stock files for %s in %s: %w", role, dir, err)
		}
	default:
		return fmt.Errorf("write stock files in %s: %w: role %q", dir, ErrInvalidConfig, role)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write stock files for %s: %w", role, err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("write stock file %s for %s: %w", f.name, role, err)
		}
	}
	return nil
}

func pbxStockFiles(address string) []stockFile {
	empty := func(name, what string) stockFile {
		return stockFile{name, fmt.Sprintf("; %s -- pbxfleet lab stock file (Issabel-like PBX): %s\n", name, what)}
	}
	sip := strings.Join([]string{
		"; sip.conf -- pbxfleet lab stock file (Issabel-like PBX, chan_sip).",
		"; Edit the *_custom.conf files, never *_additional.conf (rewritten by the GUI).",
		"[general]",
		"context=from-sip-external",
		"allowguest=no",
		"bindaddr=" + address,
		"bindport=5060",
		"realm=asterisk",
		"qualifyfreq=60",
		"disallow=all",
		"allow=ulaw",
		"allow=alaw",
		"",
		"#include sip_general_custom.conf",
		"#include sip_nat.conf",
		"#include sip_registrations_custom.conf",
		"#include sip_custom.conf",
		"#include sip_additional.conf",
		"#include sip_custom_post.conf",
		"",
	}, "\n")
	ext := strings.Join([]string{
		"; extensions.conf -- pbxfleet lab stock file (Issabel-like PBX).",
		"[general]",
		"static=yes",
		"writeprotect=no",
		"",
		"[globals]",
		"",
		"[from-internal]",
		"; every extension's context: the custom context comes first, then the GUI's dialplan",
		"include => from-internal-custom",
		"",
		"#include extensions_custom.conf",
		"",
	}, "\n")
	custom := strings.Join([]string{
		"; extensions_custom.conf -- pbxfleet lab stock file (Issabel-like PBX).",
		"[from-internal-custom]",
		"",
	}, "\n")
	return []stockFile{
		{"sip.conf", sip},
		empty("sip_general_custom.conf", "extra [general] settings"),
		empty("sip_nat.conf", "NAT settings"),
		empty("sip_registrations_custom.conf", "outbound registrations"),
		empty("sip_custom.conf", "hand-made peers"),
		empty("sip_additional.conf", "peers written by the GUI"),
		empty("sip_custom_post.conf", "overrides after the GUI's peers"),
		{"extensions.conf", ext},
		{"extensions_custom.conf", custom},
	}
}

func omlStockFiles(address, profile string) ([]stockFile, error) {
	type transport struct {
		name string
		port int
	}
	var transports []transport
	switch profile {
	case "", "1.x":
		transports = []transport{
			{"trunk-transport", 5161},
			{"trunk-nat-transport", 5162},
			{"trunk-nat-docker-transport", 5163},
		}
	case "2.x":
		transports = []transport{{"trunk-transport", 5060}}
	default:
		return nil, fmt.Errorf("%w: profile %q (want 1.x or 2.x)", ErrInvalidConfig, profile)
	}
	lines := []string{
		"; pjsip.conf -- pbxfleet lab stock file (OMniLeads-like, res_pjsip).",
		"[global]",
		"type=global",
		"",
	}
	for _, t := range transports {
		lines = append(lines,
			"["+t.name+"]",
			"type=transport",
			"protocol=udp",
			fmt.Sprintf("bind=%s:%d", address, t.port),
			"")
	}
	wizard := strings.Join([]string{
		"; pjsip_wizard.conf -- pbxfleet lab stock file (OMniLeads-like).",
		"; The wizard reads only this file and what it includes.",
		"#include oml_pjsip_wizard_override.conf",
		"#include oml_pjsip_wizard.conf",
		"#include oml_pjsip_wizard_custom.conf",
		"",
	}, "\n")
	ext := strings.Join([]string{
		"; extensions.conf -- pbxfleet lab stock file (OMniLeads-like).",
		"[general]",
		"static=yes",
		"writeprotect=no",
		"",
		"[globals]",
		"",
		"[from-pbx]",
		"; SIP number + agent id (1006 and 1 -> 10061) reaches an agent; ${EXTEN:4} is the id.",
		"; In the lab no agent is ever registered, so the call ends with cause 1 (404).",
		"exten => _1XXX.,1,NoOp(call from the PBX to agent ${EXTEN:4})",
		" same => n,Hangup(1)",
		"",
		"; Outbound routes: [oml-outr] and [oml-outr-<id>], written by the application",
		"; (OMniLeads' own RutasSalientesConfigCreator, or lab.OMLApp in the lab).",
		"#include oml_extensions_outr.conf",
		"",
		"; A minimal stand-in of OMniLeads' dial subroutine (its real one is part of its Asterisk",
		"; configuration): route ARG1, pattern ARG2, the number dialled in OMLOUTNUM; the route and",
		"; its trunk as OMniLeads resolves them, OML/OUTR/<id> TRUNK-1 -> OML/TRUNK/<id> TECH, NAME.",
		"[sub-oml-dialout]",
		"exten => s,1,Set(T=${DB(OML/OUTR/${ARG1}/TRUNK-1)})",
		" same => n,Set(N=${DB(OML/OUTR/${ARG1}/PREPEND-${ARG2})}${OMLOUTNUM:${DB(OML/OUTR/${ARG1}/PREFIX-${ARG2})}})",
		" same => n,Dial(${DB(OML/TRUNK/${T}/TECH)}/${N}@${DB(OML/TRUNK/${T}/NAME)},${DB(OML/OUTR/${ARG1}/RINGTIME)},g)",
		" same => n,Return()",
		"",
		"[sub-oml-hangup]",
		"exten => s,1,Hangup()",
		"",
		"#include oml_extensions_custom.conf",
		"",
	}, "\n")
	note := func(name, what string) stockFile {
		return stockFile{name, fmt.Sprintf("; %s -- pbxfleet lab stock file (OMniLeads-like): %s\n", name, what)}
	}
	return []stockFile{
		{"pjsip.conf", strings.Join(lines, "\n")},
		{"pjsip_wizard.conf", wizard},
		note("oml_pjsip_wizard_override.conf", "overrides"),
		{"oml_pjsip_wizard.conf", "; oml_pjsip_wizard.conf -- pbxfleet lab stock file: trunks made in the GUI\n#include oml_pjsip_trunks.conf\n"},
		note("oml_pjsip_trunks.conf", "trunks written by the GUI"),
		note("oml_pjsip_wizard_custom.conf", "hand-made trunks"),
		{"extensions.conf", ext},
		note("oml_extensions_custom.conf", "custom dialplan, loaded on dialplan reload"),
		note("oml_extensions_outr.conf", "outbound routes written by the application"),
	}, nil
}
